"""The bridge itself: one subscriber, one publisher, one Learn stream and a forecast loop.

Readings from `<topic_prefix>/+` are parsed (clients/sensorformat.py), checked (time order, the
learner's sensors) and buffered; the Learn stream writes them in small batches and reads one
acknowledgement per message; once a message carrying a sensor's every `predict_every`-th reading
is acknowledged, `Predict` is called and the forecast published on `<response_prefix>/<sensor_id>`.
Every connection is retried with exponential backoff; `Bridge.stop()` (SIGTERM) drains. The package
docstring (servers/learner/mqtt_bridge/__init__.py) states the guarantees.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import math
import signal
import time
import uuid
from dataclasses import dataclass, field

import aiomqtt
import grpc
from mlmesh.learner.v1 import learner_service_pb2 as pb
from mlmesh.learner.v1 import learner_service_pb2_grpc as pb_grpc

from clients.sensorformat import (SensorMessage, broker_params, forecast_payload, observation, parse_reading,
                                  rfc3339, sensor_topic)
from servers.common.peer import mesh_channel
from servers.common.timestamps import timestamp_from_proto
from servers.learner.mqtt_bridge.settings import MqttBridgeSettings

log = logging.getLogger("mlmesh.mqtt_bridge")


class BridgeConfigError(Exception):
    """The bridge cannot work with this configuration (e.g. the learner takes no readings)."""


@dataclass
class Stats:
    received: int = 0
    malformed: int = 0
    refused: int = 0  # out of time order, or a sensor the learner does not take
    dropped_overflow: int = 0
    sent: int = 0
    unacknowledged_lost: int = 0
    acks: int = 0
    learned: int = 0
    pending: int = 0
    running_loss: float = math.nan
    validation_loss: float = math.nan
    saved: list[str] = field(default_factory=list)
    forecasts: int = 0
    forecasts_not_ready: int = 0
    forecast_errors: int = 0

    def line(self) -> str:
        return (f"readings received {self.received}, malformed {self.malformed}, refused {self.refused}, dropped "
                f"{self.dropped_overflow}, "
                f"sent {self.sent}; learner learned {self.learned} (pending {self.pending}), running loss "
                f"{self.running_loss:.4g}, validation loss {self.validation_loss:.4g}, versions saved "
                f"{len(self.saved)}; forecasts published {self.forecasts}, not ready {self.forecasts_not_ready}, "
                f"failed {self.forecast_errors}")


def _level(count: int) -> int:
    """WARNING for the first ten of a kind and every hundredth after; DEBUG otherwise (a misbehaving
    device must not drown the log)."""
    return logging.WARNING if count <= 10 or count % 100 == 0 else logging.DEBUG


class Backoff:
    def __init__(self, initial: float, maximum: float):
        self.initial, self.maximum = initial, maximum
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.maximum)
        return delay


class Bridge:
    def __init__(self, settings: MqttBridgeSettings):
        self.s = settings
        self.stats = Stats()
        self._buffer: collections.deque[SensorMessage] = collections.deque()
        self._have_readings = asyncio.Event()
        self._counts: collections.Counter[str] = collections.Counter()
        self._last_time: dict[str, dt.datetime] = {}  # per sensor: the latest reading taken
        self._sensors: set[str] | None = None  # the learner's `sensors` transformer parameter, when it has one
        self._predict_queue: asyncio.Queue[str] = asyncio.Queue()
        self._predict_waiting: set[str] = set()
        self._stop = asyncio.Event()  # SIGTERM: stop taking readings
        self._draining = False  # the buffer will not grow any more; the writer ends when it is empty
        self._publisher: aiomqtt.Client | None = None
        self._broker = broker_params(settings.broker_url)
        self._metadata = (("authorization", f"Bearer {settings.token}"),) if settings.token else ()
        # The Learner's own port needs the bridge's mesh certificate (settings.tls); Envoy's front door
        # takes plaintext and the token.
        self._channel = mesh_channel(settings.learner_target, tls=settings.tls, options=[
            ("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000)])
        self._stub = pb_grpc.LearnerServiceStub(self._channel)
        self._learn_backoff = Backoff(settings.backoff_initial_seconds, settings.backoff_max_seconds)

    def stop(self) -> None:
        self._stop.set()

    # -- readings in -------------------------------------------------------------------------

    def accept(self, topic: str, payload: bytes) -> None:
        """Parses one broker message into the buffer (malformed ones are logged and counted)."""
        try:
            reading = parse_reading(topic, payload, self.s.topic_prefix)
        except Exception as exc:  # MalformedMessage, or a surprise: either way one message, never the bridge
            self.stats.malformed += 1
            log.log(_level(self.stats.malformed), "dropped a malformed message on %s (%d so far): %s", topic,
                    self.stats.malformed, exc)
            return
        self.stats.received += 1
        if self._sensors is not None and reading.sensor_id not in self._sensors:
            self._refuse(f"sensor {reading.sensor_id!r} is not one of the learner's sensors "
                         f"({', '.join(sorted(self._sensors))})")
            return
        last = self._last_time.get(reading.sensor_id)
        if last is not None and reading.time <= last:
            # the Learner refuses a reading not after the sensor's previous one (and with it the whole
            # message), so a QoS 1 redelivery or a late reading stops here
            self._refuse(f"sensor {reading.sensor_id!r} reading at {rfc3339(reading.time)} is not after its "
                         f"previous one at {rfc3339(last)}")
            return
        self._last_time[reading.sensor_id] = reading.time
        if len(self._buffer) >= self.s.max_buffered_readings:
            self._buffer.popleft()
            self.stats.dropped_overflow += 1
            if self.stats.dropped_overflow in (1, 10, 100) or self.stats.dropped_overflow % 1000 == 0:
                log.warning("the learner is not keeping up: %d readings dropped (oldest first, buffer %d)",
                            self.stats.dropped_overflow, self.s.max_buffered_readings)
        self._buffer.append(reading)
        self._have_readings.set()

    def _refuse(self, why: str) -> None:
        self.stats.refused += 1
        log.log(_level(self.stats.refused), "dropped a reading (%d so far): %s", self.stats.refused, why)

    async def _subscriber(self) -> None:
        backoff = Backoff(self.s.backoff_initial_seconds, self.s.backoff_max_seconds)
        while not self._stop.is_set():
            try:
                client = aiomqtt.Client(**self._broker, identifier=self.s.subscriber_id,
                                        clean_session=not self.s.persistent_session, logger=log.getChild("mqtt"))
                async with client:
                    await client.subscribe(self.s.topic_filter, qos=self.s.qos)
                    log.info("subscribed to %s on %s as %s", self.s.topic_filter, self.s.broker_url,
                             self.s.subscriber_id)
                    backoff.reset()
                    async for message in client.messages:
                        payload = message.payload
                        self.accept(message.topic.value, bytes(payload) if isinstance(payload, bytes | bytearray)
                                    else str(payload).encode())
            except aiomqtt.MqttError as exc:
                delay = backoff.next()
                log.warning("broker %s: %s; reconnecting in %.1f s", self.s.broker_url, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def _publisher_loop(self) -> None:
        backoff = Backoff(self.s.backoff_initial_seconds, self.s.backoff_max_seconds)
        while True:
            try:
                client = aiomqtt.Client(**self._broker, identifier=f"{self.s.subscriber_id}-pub-{uuid.uuid4().hex[:8]}",
                                        logger=log.getChild("mqtt"))
                async with client:
                    self._publisher = client
                    backoff.reset()
                    try:
                        # aiomqtt has no public "wait until the connection is lost"; shielded so a cancel
                        # leaves the future to __aexit__, which then disconnects cleanly
                        await asyncio.shield(client._disconnected)  # noqa: SLF001
                    finally:
                        self._publisher = None
                raise aiomqtt.MqttError("connection lost")
            except aiomqtt.MqttError as exc:
                delay = backoff.next()
                log.warning("broker %s (publisher): %s; reconnecting in %.1f s", self.s.broker_url, exc, delay)
                await asyncio.sleep(delay)

    # -- the Learn stream --------------------------------------------------------------------

    async def _next_batch(self) -> list[SensorMessage]:
        """The next readings to write (waits for one, then `batch_window_ms` for more); [] when draining
        and nothing is left."""
        while not self._buffer:
            if self._draining:
                return []
            self._have_readings.clear()
            await self._have_readings.wait()
        if self.s.batch_window_ms and len(self._buffer) < self.s.max_batch and not self._draining:
            await asyncio.sleep(self.s.batch_window_ms / 1000)
        n = min(len(self._buffer), self.s.max_batch)
        return [self._buffer.popleft() for _ in range(n)]

    def _request(self, batch: list[SensorMessage]) -> tuple[pb.LearnRequest, list[str]]:
        observations, predict = [], []
        for r in batch:
            observations.append(observation(r, r.sensor_id))
            self._counts[r.sensor_id] += 1
            every = self.s.predict_every
            if every and self._counts[r.sensor_id] % every == 0 and r.sensor_id not in predict:
                predict.append(r.sensor_id)
        return pb.LearnRequest(learner_id=self.s.learner_id, observations=observations, flush=self.s.flush), predict

    async def _learn_session(self) -> None:
        """One Learn stream, until draining is done (returns) or the stream fails (raises)."""
        learner = await self._stub.GetLearner(pb.GetLearnerRequest(learner_id=self.s.learner_id),
                                              metadata=self._metadata, timeout=self.s.rpc_timeout_seconds)
        if learner.spec.transformer != "power-forecast":
            raise BridgeConfigError(f"learner {learner.learner_id} ({learner.display_name}) has transformer "
                                    f"{learner.spec.transformer!r}; the bridge feeds sensor readings, which only "
                                    "a power-forecast learner takes")
        sensors = learner.spec.transformer_params.fields.get("sensors")
        self._sensors = {v.string_value for v in sensors.list_value.values} if sensors is not None else None
        log.info("learner %s (%s): %s learned so far; opening its Learn stream at %s", learner.learner_id,
                 learner.display_name, learner.observations_learned, self.s.learner_target)
        self._learn_backoff.reset()
        call = self._stub.Learn(metadata=self._metadata)
        in_flight: collections.deque[tuple[int, list[str]]] = collections.deque()

        async def write() -> None:
            while batch := await self._next_batch():
                request, predict = self._request(batch)
                in_flight.append((len(batch), predict))  # before the write: its ack may beat the write's return
                try:
                    await call.write(request)
                except BaseException:
                    in_flight.pop()
                    self._buffer.extendleft(reversed(batch))  # never written: they go out on the next stream
                    for r in batch:
                        self._counts[r.sensor_id] -= 1
                    raise
                self.stats.sent += len(batch)
            await call.done_writing()

        async def read() -> None:
            last_summary = time.monotonic()
            async for ack in call:
                # one ack per message written, and one more at the end for what the close flushed
                _, predict = in_flight.popleft() if in_flight else (0, [])
                self._on_ack(ack)
                for sensor_id in predict:
                    self._want_forecast(sensor_id)
                if time.monotonic() - last_summary >= self.s.summary_seconds:
                    last_summary = time.monotonic()
                    log.info("%s", self.stats.line())

        writer, reader = asyncio.create_task(write()), asyncio.create_task(read())
        try:
            done, _ = await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises the stream's error
            await reader
            await writer
        finally:
            for task in (writer, reader):
                task.cancel()
            await asyncio.gather(writer, reader, return_exceptions=True)
            call.cancel()
            if in_flight:
                lost = sum(n for n, _ in in_flight)
                self.stats.unacknowledged_lost += lost
                log.warning("%d readings were written but not acknowledged before the stream ended; the learner "
                            "may or may not have learned them", lost)

    def _on_ack(self, ack: pb.LearnResponse) -> None:
        self.stats.acks += 1
        self.stats.learned, self.stats.pending = ack.observations_learned, ack.pending
        self.stats.running_loss, self.stats.validation_loss = ack.running_loss, ack.validation_loss
        log.debug("ack: received %d, learned %d, pending %d, batch loss %.4g, running loss %.4g, validation "
                  "loss %.4g", ack.observations_received, ack.observations_learned, ack.pending, ack.batch_loss,
                  ack.running_loss, ack.validation_loss)
        if ack.HasField("saved"):
            self.stats.saved.append(ack.saved.model_id)
            log.info("learner saved version %d: model %s, validation loss %.4g", ack.saved.version,
                     ack.saved.model_id, ack.saved.validation_loss)

    async def _learn_loop(self) -> None:
        backoff = self._learn_backoff
        while True:
            try:
                await self._learn_session()
                return  # drained
            except BridgeConfigError:
                raise
            except grpc.aio.AioRpcError as exc:
                if self._draining and not self._buffer:
                    return
                delay = backoff.next()
                hint = {grpc.StatusCode.NOT_FOUND: " (no such learner: check MLMESH_MQTT_BRIDGE_LEARNER_ID)",
                        grpc.StatusCode.UNAUTHENTICATED: " (set MLMESH_MQTT_BRIDGE_TOKEN to a valid token)"}
                level = logging.ERROR if exc.code() in hint else logging.WARNING
                log.log(level, "learner at %s: %s: %s%s; retrying in %.1f s (%d readings buffered)",
                        self.s.learner_target, exc.code().name, exc.details(), hint.get(exc.code(), ""), delay,
                        len(self._buffer))
                await asyncio.sleep(min(delay, 1.0) if self._draining else delay)
            except Exception:  # anything else: log it, retry; never leave the readings unread
                delay = backoff.next()
                log.exception("Learn stream to %s failed; retrying in %.1f s", self.s.learner_target, delay)
                await asyncio.sleep(min(delay, 1.0) if self._draining else delay)

    # -- forecasts out -----------------------------------------------------------------------

    def _want_forecast(self, sensor_id: str) -> None:
        if sensor_id not in self._predict_waiting:
            self._predict_waiting.add(sensor_id)
            self._predict_queue.put_nowait(sensor_id)

    async def _predict_loop(self) -> None:
        while True:
            sensor_id = await self._predict_queue.get()
            self._predict_waiting.discard(sensor_id)
            try:
                await self._forecast(sensor_id)
            except Exception:  # a forecast must never stop the bridge
                self.stats.forecast_errors += 1
                log.exception("forecast for %s failed", sensor_id)
            finally:
                self._predict_queue.task_done()

    async def _forecast(self, sensor_id: str) -> None:
        try:
            response = await self._stub.Predict(pb.PredictRequest(learner_id=self.s.learner_id, sensor_id=sensor_id),
                                                metadata=self._metadata, timeout=self.s.rpc_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:  # too few readings yet: normal at the start
                self.stats.forecasts_not_ready += 1
                log.debug("no forecast for %s yet: %s", sensor_id, exc.details())
            else:
                self.stats.forecast_errors += 1
                log.warning("Predict for %s: %s: %s", sensor_id, exc.code().name, exc.details())
            return
        if not response.predictions or not response.predictions[0].values:
            self.stats.forecast_errors += 1
            log.warning("Predict for %s returned no value", sensor_id)
            return
        prediction = response.predictions[0]
        target = timestamp_from_proto(prediction.target_time) if prediction.HasField("target_time") else None
        payload = forecast_payload(sensor_id, target, prediction.values[0], response.model_id, self.s.learner_id)
        topic = sensor_topic(self.s.response_prefix, sensor_id)
        publisher = self._publisher
        if publisher is None:
            self.stats.forecast_errors += 1
            log.warning("forecast for %s not published: not connected to the broker", sensor_id)
            return
        try:
            await publisher.publish(topic, payload, qos=self.s.qos, timeout=self.s.rpc_timeout_seconds)
        except aiomqtt.MqttError as exc:
            self.stats.forecast_errors += 1
            log.warning("forecast for %s not published on %s: %s", sensor_id, topic, exc)
            return
        self.stats.forecasts += 1
        log.debug("published %s", payload.decode())

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Runs until `stop()` (SIGTERM), then drains and returns."""
        subscriber = asyncio.create_task(self._subscriber(), name="subscriber")
        publisher = asyncio.create_task(self._publisher_loop(), name="publisher")
        learner = asyncio.create_task(self._learn_loop(), name="learn")
        predictor = asyncio.create_task(self._predict_loop(), name="predict")
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({subscriber, publisher, learner, predictor, stop},
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stop}:
                task.result()  # a loop that ended by itself has a bug: surface it
            log.info("stopping: no more readings from the broker; writing the %d buffered", len(self._buffer))
            subscriber.cancel()
            await asyncio.gather(subscriber, return_exceptions=True)
            self._draining = True
            self._have_readings.set()
            try:
                await asyncio.wait_for(asyncio.shield(learner), self.s.shutdown_timeout_seconds)
                await asyncio.wait_for(self._predict_queue.join(), self.s.shutdown_timeout_seconds)
            except TimeoutError:
                log.warning("shutdown: gave up waiting after %.0f s", self.s.shutdown_timeout_seconds)
        finally:
            for task in (subscriber, publisher, learner, predictor, stop):
                task.cancel()
            await asyncio.gather(subscriber, publisher, learner, predictor, stop, return_exceptions=True)
            await self._channel.close()
            log.info("stopped: %s", self.stats.line())


async def serve(settings: MqttBridgeSettings) -> int:
    """Runs the bridge until SIGTERM/SIGINT; returns the exit status (2: a configuration error)."""
    bridge = Bridge(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, bridge.stop)
    try:
        await bridge.run()
    except BridgeConfigError as exc:
        log.error("%s", exc)
        return 2
    return 0
