"""MQTT → Learner bridge: sensor readings from a broker feed one learner; its forecasts go back.

    MLMESH_MQTT_BRIDGE_LEARNER_ID=<uuid> MLMESH_MQTT_BRIDGE_BROKER_URL=mqtt://127.0.0.1:1883 \\
        .venv-ml/bin/python -m servers.learner.mqtt_bridge

The seed's Camel-K binding (D3.4 2.1.1, step 6: a broker, its topics and the prediction service
the data goes to) as one small process. It subscribes to `<topic_prefix>/+` (QoS 1, a persistent
session, so the broker keeps readings for it while it restarts), keeps ONE Learn stream open to
the Learner and writes every reading into it as an `Observation(reading=SensorReading(...))`,
readings that arrive within `batch_window_ms` of each other in one message. It reads the
acknowledgements (running and validation loss, saved versions) and, once the message carrying a
sensor's every `predict_every`-th reading is acknowledged, calls `Predict(sensor_id=...)` and
publishes the forecast on `<response_prefix>/<sensor_id>`.

A malformed message is logged and counted, never fatal. When the broker or the Learner goes away
the bridge reconnects with exponential backoff; readings that arrive meanwhile wait in memory (at
most `max_buffered_readings`, oldest dropped first). A reading is written into the Learn stream
at most once: if the stream breaks before a message is acknowledged, its readings may or may not
have been learned (the count is logged). SIGTERM or SIGINT: stop reading the broker, write what
is buffered, wait for the last acknowledgements and forecasts, disconnect, exit 0.

The bridge is a client of LearnerService like any other, so it speaks the public sensor formats
of clients/sensorformat.py (docs/sensors.md) rather than its own copy. Modules: `settings`
(MLMESH_MQTT_BRIDGE_*), `bridge` (the `Bridge` and `serve`), `__main__` (the process).
"""
