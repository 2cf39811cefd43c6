"""Settings of the MQTT bridge (env prefix MLMESH_MQTT_BRIDGE_): the only place it reads the environment."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from clients.sensorformat import broker_params
from servers.common.endpoints import local_target
from servers.common.settings import TlsSettings, mesh_setting, settings_config


class MqttBridgeSettings(BaseSettings):
    """Env prefix MLMESH_MQTT_BRIDGE_."""

    model_config = settings_config("MQTT_BRIDGE")

    learner_id: str = Field(..., min_length=1, description="UUID of the learner the readings feed. Required.")
    broker_url: str = Field("mqtt://127.0.0.1:1883",
                            description="MQTT broker: mqtt://[user:password@]host[:port] (1883), or mqtts:// "
                            "(TLS, 8883); tcp:// and ssl:// are their aliases.")
    learner_target: str = Field(local_target("learner"),
                                description="host:port of the Learner's gRPC server, or of Envoy (then set token).")
    token: str | None = Field(None, description="Bearer token sent to the Learner (needed through Envoy).")
    tls: TlsSettings = Field(default_factory=TlsSettings,
                             description="The bridge's mesh certificate (MLMESH_TLS_* or MLMESH_MQTT_BRIDGE_TLS__*), "
                             "needed when learner_target is the Learner's own port in a mesh with mutual TLS; "
                             "leave unset when it is Envoy's front door.")
    topic_prefix: str = Field("mlmesh/sensors", description="Readings arrive on <topic_prefix>/<sensor_id>.")
    subscription: str = Field("", description="Topic filter to subscribe to (default <topic_prefix>/+). "
                              "Topics outside <topic_prefix>/ are counted as malformed.")
    response_prefix: str = Field("mlmesh/predictions",
                                 description="Forecasts are published on <response_prefix>/<sensor_id>.")
    predict_every: int = Field(1, ge=0, description="Publish a sensor's forecast after every Nth reading of "
                               "it (0: never).")
    qos: int = Field(1, ge=0, le=2, description="MQTT QoS of the subscription and of published forecasts.")
    client_id: str = Field("", description="MQTT client id of the subscriber (default mlmesh-bridge-<learner_id>); "
                           "the broker keeps its session (and queued readings) across restarts.")
    persistent_session: bool = Field(True, description="Ask the broker to keep the subscriber's session while "
                                     "the bridge is away (MQTT clean session off).")
    flush: bool = Field(False, description="Ask the Learner to learn every message at once instead of waiting "
                        "for a full micro-batch (for slow sensors and demos).")
    batch_window_ms: float = Field(5.0, ge=0, description="Readings arriving within this many ms share one "
                                   "Learn message.")
    max_batch: int = Field(500, ge=1, description="At most this many readings in one Learn message.")
    max_buffered_readings: int = Field(100_000, ge=1, description="Readings kept while the Learner is away; "
                                       "beyond this the oldest are dropped (and counted).")
    backoff_initial_seconds: float = Field(0.5, gt=0, description="First reconnection delay.")
    backoff_max_seconds: float = Field(30.0, gt=0, description="Longest reconnection delay (it doubles).")
    rpc_timeout_seconds: float = Field(10.0, gt=0, description="Deadline of GetLearner and Predict calls.")
    shutdown_timeout_seconds: float = Field(10.0, ge=0, description="On SIGTERM: how long the last "
                                            "acknowledgements and forecasts may take.")
    summary_seconds: float = Field(60.0, gt=0, description="Interval of the INFO summary line.")
    log_level: str = Field(default_factory=mesh_setting("log_level"),
                           description="Python logging level (default: MLMESH_LOG_LEVEL).")

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        broker_params(value)  # a URL the bridge cannot dial is a bad setting, said at start-up
        return value

    @field_validator("topic_prefix", "response_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value or any(c in value for c in "+#"):
            raise ValueError(f"must be a non-empty topic without wildcards, got {value!r}")
        return value

    @property
    def topic_filter(self) -> str:
        return self.subscription or f"{self.topic_prefix}/+"

    @property
    def subscriber_id(self) -> str:
        return self.client_id or f"mlmesh-bridge-{self.learner_id}"
