"""Sensor inputs of the Learner against a real mosquitto broker (tests/fixtures/mosquitto.py):
`mlmesh sensors replay` (clients/sensors.py, run as a process exactly as a user runs it) and the
MQTT bridge's message format (servers/learner/mqtt_bridge.py)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest

from servers.devstack.procs import free_port
from servers.learner.mqtt_bridge import MalformedMessage, forecast_payload, parse_reading

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


@pytest.mark.parametrize(("topic", "payload", "expected"), [
    ("mlmesh/sensors/W6", b'{"time": "2024-03-04T00:15:00Z", "value": 3.5}',
     ("W6", dt.datetime(2024, 3, 4, 0, 15, tzinfo=UTC), 3.5)),
    ("mlmesh/sensors/W6", b'{"time": "2024-03-04T02:15:00+02:00", "value": 2}',
     ("W6", dt.datetime(2024, 3, 4, 0, 15, tzinfo=UTC), 2.0)),
    ("mlmesh/sensors/3640f24ba43a423188979372bae6277a", b"17.25",
     ("3640f24ba43a423188979372bae6277a", dt.datetime(2026, 1, 1, tzinfo=UTC), 17.25)),
])
def test_bridge_reads_the_documented_format(topic, payload, expected):
    r = parse_reading(topic, payload, "mlmesh/sensors", now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert (r.sensor_id, r.time, r.value) == expected


@pytest.mark.parametrize(("topic", "payload", "message"), [
    ("mlmesh/sensors/W4", b"not json", "is not JSON"),
    ("mlmesh/sensors/W4", b'{"time": "2024-03-04T00:15:00Z"}', 'no "value"'),
    ("mlmesh/sensors/W4", b'{"time": "noon", "value": 1}', "not an RFC 3339 time"),
    ("mlmesh/sensors/W4", b'{"value": "1.5"}', "must be a number"),
    ("mlmesh/sensors/W4", b"NaN", "must be finite"),
    ("mlmesh/sensors/W4", b"true", "must be a number"),
    ("mlmesh/sensors/", b"1", "is not mlmesh/sensors/<sensor_id>"),
    ("other/W4", b"1", "is not mlmesh/sensors/<sensor_id>"),
])
def test_bridge_names_what_is_wrong_with_a_message(topic, payload, message):
    with pytest.raises(MalformedMessage, match=message):
        parse_reading(topic, payload, "mlmesh/sensors")


def test_forecast_payload():
    body = json.loads(forecast_payload("W4", dt.datetime(2024, 3, 5, 12, tzinfo=UTC), 21.5, "m-1", "l-1"))
    assert body == {"sensor_id": "W4", "target_time": "2024-03-05T12:00:00Z", "value": 21.5, "model_id": "m-1",
                    "learner_id": "l-1"}
