"""Sensor inputs of the Learner against a real mosquitto broker (tests/fixtures/mosquitto.py):
`mlmesh sensors replay` (clients/sensors.py, run as a process exactly as a user runs it) and the
MQTT bridge (servers/learner/mqtt_bridge/, run as a process). The message format both sides share
(clients/sensorformat.py) is tested without a broker in tests/unit/test_sensorformat.py."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest
from mlmesh.learner.v1 import learner_service_pb2 as lpb

from clients.sensorformat import parse_reading
from servers.devstack.procs import free_port

REPO = Path(__file__).resolve().parents[2]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
UTC = dt.UTC


@pytest.fixture(scope="module")
def power_csv(tmp_path_factory) -> Path:
    """One day of the example smart-meter series (96 readings at 15 minutes), written by the example script."""
    path = tmp_path_factory.mktemp("sensors") / "BBB60XX.csv"
    subprocess.run([str(ML_PYTHON), str(REPO / "examples" / "make_power_csv.py"), "--days", "1", "--seed", "7",
                    "--out", str(path)], check=True, capture_output=True, timeout=60)
    return path


def csv_rows(path: Path) -> list[tuple[dt.datetime, float]]:
    with open(path, newline="") as f:
        return [(dt.datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC), float(r["power_kw"]))
                for r in csv.DictReader(f)]


def replay(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clients.sensors", "replay", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


async def run_replay(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "clients.sensors", "replay", *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def collect(url: str, topic: str, started: asyncio.Event, count: int, timeout: float = 30.0) -> list:
    """Subscribes to `topic` (QoS 1), sets `started`, returns the first `count` messages as (topic, payload, t)."""
    port = int(url.rsplit(":", 1)[1])
    got = []
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)
        started.set()
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                got.append((message.topic.value, bytes(message.payload), time.monotonic()))
                if len(got) == count:
                    break
    return got


async def test_replay_to_mqtt_publishes_the_csv_in_order(mosquitto_url, power_csv):
    prefix = f"test/{uuid.uuid4().hex[:8]}/sensors"
    expected = csv_rows(power_csv)
    assert len(expected) == 96
    started = asyncio.Event()
    subscriber = asyncio.create_task(collect(mosquitto_url, f"{prefix}/+", started, len(expected)))
    await asyncio.wait_for(started.wait(), 10)
    code, out, err = await run_replay(str(power_csv), "--mqtt", mosquitto_url, "--topic-prefix", prefix,
                                      "--as-fast-as-possible")
    assert code == 0, err
    assert f"published 96 readings on {prefix}/BBB60XX" in out
    got = await subscriber
    assert {topic for topic, _, _ in got} == {f"{prefix}/BBB60XX"}  # sensor id: the file name
    readings = [json.loads(payload) for _, payload, _ in got]
    assert [(dt.datetime.fromisoformat(r["time"]), r["value"]) for r in readings] == expected
    assert readings[0] == {"time": "2024-03-04T00:00:00Z", "value": expected[0][1]}
    # what the client publishes is what the bridge reads
    assert [parse_reading(t, p, prefix) for t, p, _ in got][5].value == expected[5][1]


async def test_replay_to_mqtt_paces_and_limits(mosquitto_url, power_csv):
    prefix = f"test/{uuid.uuid4().hex[:8]}/sensors"
    started = asyncio.Event()
    subscriber = asyncio.create_task(collect(mosquitto_url, f"{prefix}/#", started, 20))
    await asyncio.wait_for(started.wait(), 10)
    code, out, err = await run_replay(str(power_csv), "--mqtt", mosquitto_url, "--topic-prefix", prefix,
                                      "--sensor-id", "W4", "--rate", "40", "--limit", "20")
    assert code == 0, err
    got = await subscriber
    assert [t for t, _, _ in got] == [f"{prefix}/W4"] * 20
    assert [json.loads(p)["value"] for _, p, _ in got] == [v for _, v in csv_rows(power_csv)[:20]]
    # 20 readings at 40 per second: the last is due 19/40 s after the first
    assert got[-1][2] - got[0][2] >= 19 / 40 - 0.05
    assert "published 20 readings" in out


def test_replay_errors_are_clear(tmp_path, power_csv):
    missing = replay(str(tmp_path / "nope.csv"), "--mqtt", "mqtt://127.0.0.1:1")
    assert missing.returncode == 2 and "no such file" in missing.stderr and "nope.csv" in missing.stderr

    bad_value = tmp_path / "bad.csv"
    bad_value.write_text("timestamp,power_kw\n2024-03-04T00:00:00,1.5\n2024-03-04T00:15:00,2.0\n"
                         "2024-03-04T00:30:00,abc\n")
    result = replay(str(bad_value), "--mqtt", "mqtt://127.0.0.1:1")
    assert result.returncode == 2
    assert "line 4" in result.stderr and "power_kw 'abc' is not a number" in result.stderr

    bad_time = tmp_path / "bad_time.csv"
    bad_time.write_text("timestamp,power_kw\nyesterday,1.5\n")
    result = replay(str(bad_time), "--mqtt", "mqtt://127.0.0.1:1")
    assert result.returncode == 2 and "line 2" in result.stderr and "'yesterday'" in result.stderr

    result = replay(str(power_csv), "--mqtt", "mqtt://127.0.0.1:1", "--value-column", "kw")
    assert result.returncode == 2
    assert "no column 'kw'" in result.stderr and "'timestamp', 'power_kw'" in result.stderr

    # nothing listens on this port: the broker is unreachable, said so, exit 1 (after the CSV checked out)
    result = replay(str(power_csv), "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--as-fast-as-possible")
    assert result.returncode == 1 and "MQTT broker" in result.stderr and "refused" in result.stderr.lower()

    result = replay(str(power_csv))
    assert result.returncode == 2 and "--learner" in result.stderr


# -- end to end: the real Learner (tests/fixtures/learner.py, a .venv-ml process) ------------------

WINDOW, HORIZON, STEP = 8, 4, dt.timedelta(minutes=15)


async def small_power_learner(h, name: str, **spec):
    reference = await h.upload_power_csv(days=1, seed=1, name=f"{name}-reference")
    return await h.create_power_learner(name, reference, transformer_params={"window": WINDOW, "horizon": HORIZON},
                                        micro_batch_size=8, save_policy=lpb.SavePolicy(disabled=True), **spec)


async def learned(h, learner_id: str) -> int:
    return (await h.stub.GetLearner(lpb.GetLearnerRequest(learner_id=learner_id))).observations_learned


async def until(predicate, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{log()}")
        await asyncio.sleep(0.1)


class Forecasts:
    """Collects the bridge's forecasts from the response topics in the background."""

    def __init__(self, url: str, topic: str):
        self.port, self.topic = int(url.rsplit(":", 1)[1]), topic
        self.got: list[dict] = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            await client.subscribe(self.topic, qos=1)
            self.ready.set()
            async for message in client.messages:
                self.got.append({"topic": message.topic.value, **json.loads(message.payload)})

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self.task


async def test_bridge_feeds_the_learner_and_publishes_forecasts_through_outages(learner_server, mosquitto_broker,
                                                                                power_csv, tmp_path):
    h, broker = learner_server, mosquitto_broker
    learner = await small_power_learner(h, "bridge-BBB60XX")
    rows = csv_rows(power_csv)
    prefix, responses = f"test/{uuid.uuid4().hex[:8]}/sensors", f"test/{uuid.uuid4().hex[:8]}/predictions"
    log_path = tmp_path / "bridge.log"
    env = {**os.environ, "MLMESH_MQTT_BRIDGE_LEARNER_ID": learner.learner_id,
           "MLMESH_MQTT_BRIDGE_BROKER_URL": broker.url, "MLMESH_MQTT_BRIDGE_LEARNER_TARGET": h.target,
           "MLMESH_MQTT_BRIDGE_TOPIC_PREFIX": prefix, "MLMESH_MQTT_BRIDGE_RESPONSE_PREFIX": responses,
           "MLMESH_MQTT_BRIDGE_PREDICT_EVERY": "4", "MLMESH_MQTT_BRIDGE_BACKOFF_MAX_SECONDS": "0.5",
           "PYTHONPATH": str(REPO)}
    forecasts = Forecasts(broker.url, f"{responses}/+")
    await asyncio.wait_for(forecasts.ready.wait(), 10)
    with open(log_path, "wb") as log_file:
        bridge = subprocess.Popen([str(ML_PYTHON), "-m", "servers.learner.mqtt_bridge"], cwd=REPO, env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    full = lambda: log_path.read_text(errors="replace")  # noqa: E731
    log = lambda: full()[-3000:]  # noqa: E731
    try:
        async def opened(n: int = 1):
            return full().count("opening its Learn stream") >= n and full().count("subscribed to") >= n
        await until(opened, 30, "the bridge to connect", log)

        # a malformed message is counted and dropped; the readings after it are learned
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(f"{prefix}/BBB60XX", b'{"time": "2024-03-04T00:00:00Z"}', qos=1)
        code, _, err = await run_replay(str(power_csv), "--mqtt", broker.url, "--topic-prefix", prefix, "--limit",
                                        "48", "--as-fast-as-possible")
        assert code == 0, err
        # 48 readings: 48 - 8 - 4 + 1 = 37 pairs, learned in micro-batches of 8 while the stream stays open
        await until(lambda: _equals(learned(h, learner.learner_id), 32), 30, "32 pairs learned", log)
        last = rows[47][0] + HORIZON * STEP
        await until(lambda: _true(bool(forecasts.got) and forecasts.got[-1]["target_time"] == rfc(last)), 30,
                    f"the forecast for {rfc(last)}", log)
        f = forecasts.got[-1]
        assert f["topic"] == f"{responses}/BBB60XX" and f["sensor_id"] == "BBB60XX"
        assert f["learner_id"] == learner.learner_id and f["model_id"] == ""  # no saved version: the live model
        assert isinstance(f["value"], float) and math.isfinite(f["value"])
        assert "dropped a malformed message" in full() and "no \"value\"" in full()
        await forecasts.close()

        # the broker goes away and comes back: the bridge subscribes again
        broker.stop()
        await asyncio.sleep(1.0)
        broker.start()
        await until(lambda: _true(full().count("subscribed to") >= 2), 30, "the bridge to resubscribe", log)
        # the Learner goes away (kill -9): readings wait in the bridge and are learned once it is back
        await asyncio.to_thread(h.process.kill)
        code, _, err = await run_replay(str(power_csv), "--mqtt", broker.url, "--topic-prefix", prefix,
                                        "--as-fast-as-possible")
        assert code == 0, err
        await asyncio.to_thread(h.process.start)
        await until(lambda: _true(full().count("opening its Learn stream") >= 2), 60, "the bridge to reopen", log)
        # the first replay's 48 readings again are refused by the bridge (not after the previous one);
        # the other 48 reach the Learner. It had saved no version, but its Learn journal survives the kill:
        # the first 48 readings are replayed (37 pairs: 32 learned, 5 pending) and the new 48 continue the
        # series (48 more pairs): 85 pairs, 80 learned in micro-batches of 8 while the stream is open
        await until(lambda: _equals(learned(h, learner.learner_id), 80), 60, "the buffered readings learned", log)
    finally:
        if bridge.poll() is None:
            bridge.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(bridge.wait, 30)
        await forecasts.close()
    assert code == 0, log()
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]
    stopped = text[text.rindex("stopped: "):]
    assert "received 144, malformed 1, refused 48, dropped 0, sent 96;" in stopped, stopped
    assert "48 readings buffered" in text  # it noticed the Learner was away and kept the readings
    # SIGTERM closed the stream: the Learner learned the partial micro-batch (all 85 pairs)
    assert await learned(h, learner.learner_id) == 85


async def test_replay_over_grpc_learns_every_pair(learner_server, power_csv):
    h = learner_server
    learner = await small_power_learner(h, "replay-W4")
    env = {**os.environ, "MLMESH_TOKEN": "direct-to-the-learner", "PYTHONPATH": str(REPO)}
    result = await asyncio.to_thread(replay, str(power_csv), "--learner", learner.learner_id, "--target", h.target,
                                     "--sensor-id", "W4", "--as-fast-as-possible", "--batch", "10", env=env)
    assert result.returncode == 0, result.stderr
    pairs = 96 - WINDOW - HORIZON + 1
    assert f"sent 96 readings of W4 in 10 messages to learner {learner.learner_id}" in result.stdout
    # the last HORIZON readings stay pending: their targets have not arrived
    assert (f"{pairs} training pairs learned in total ({pairs} from this replay), {HORIZON} pending (waiting"
            in result.stdout), result.stdout
    assert await learned(h, learner.learner_id) == pairs
    forecast = await h.stub.Predict(lpb.PredictRequest(learner_id=learner.learner_id, sensor_id="W4"))
    assert forecast.predictions[0].target_time.ToDatetime(tzinfo=UTC) == csv_rows(power_csv)[-1][0] + HORIZON * STEP

    result = await asyncio.to_thread(replay, str(power_csv), "--learner", str(uuid.uuid4()), "--target", h.target,
                                     "--as-fast-as-possible", env=env)
    assert result.returncode == 1 and "NOT_FOUND" in result.stderr and "check --learner" in result.stderr


async def _equals(value, expected) -> bool:
    return (await value) == expected


async def _true(value: bool) -> bool:
    return value


def rfc(value: dt.datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
