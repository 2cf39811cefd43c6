"""The sensor wire formats (docs/sensors.md), written once for every side that speaks them: the
`mlmesh sensors replay` client, the Learner demo and the MQTT bridge (servers/learner/mqtt_bridge/).

* A sensor CSV: a header, a time column (ISO 8601; without an offset: UTC) and a value column,
  readings in strictly increasing time order (`read_rows`, `check_csv`; `CsvError` names the line).
* MQTT readings on `<prefix>/<sensor_id>`: JSON `{"time": "<RFC 3339>", "value": <number>}` (no
  "time": measured now) or a bare JSON number (`reading_payload` writes one, `parse_reading` reads
  one; `MalformedMessage` says what is wrong).
* MQTT forecasts on `<response_prefix>/<sensor_id>` (`forecast_payload`).
* Broker URLs: `mqtt://[user:password@]host[:port]` (1883) or `mqtts://...` (TLS, 8883); `tcp://` and
  `ssl://` are their aliases (`broker_params`).
* A reading as a LearnerService `Observation` (`observation`).

Only the standard library here (and the generated LearnerService messages, imported when an
observation is built): no server code, no typer or rich, so a client-only package can ship it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

BROKER_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}  # scheme -> TLS


# -- times -------------------------------------------------------------------------------------


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 / ISO 8601 time as an aware UTC datetime; one without an offset is taken as UTC.
    Raises ValueError (also for a time that leaves datetime's range once converted to UTC)."""
    try:
        value = dt.datetime.fromisoformat(text)
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{text!r} is not an RFC 3339 time") from None


def rfc3339(value: dt.datetime) -> str:
    """`value` in UTC as RFC 3339 with a "Z" (2024-03-04T00:15:00Z)."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# -- the sensor CSV ----------------------------------------------------------------------------


class CsvError(Exception):
    """The CSV cannot be replayed; the message names the file, the line and what to fix."""


@dataclass(frozen=True)
class Row:
    """One reading of a sensor CSV."""

    line: int
    time: dt.datetime  # tz-aware
    value: float


def read_rows(path: Path, time_column: str, value_column: str, limit: int | None = None) -> Iterator[Row]:
    """Readings of the CSV in file order; times without an offset are taken as UTC. Raises CsvError."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in (time_column, value_column) if c not in header]
        if missing:
            names = ", ".join(repr(h) for h in header if h) or "none (the file is empty)"
            raise CsvError(f"{path}: no column {' or '.join(map(repr, missing))}; its columns are {names} "
                           "(choose them with --time-column and --value-column)")
        ti, vi = header.index(time_column), header.index(value_column)
        count = 0
        previous: Row | None = None
        for row in reader:
            if limit is not None and count >= limit:
                return
            if not row or all(not cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) <= max(ti, vi):
                raise CsvError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
            try:
                when = parse_time(row[ti].strip())
            except ValueError:
                raise CsvError(f"{path} line {line}: {time_column} {row[ti]!r} is not an ISO 8601 time such as "
                               "2024-03-04T00:15:00") from None
            try:
                value = float(row[vi])
            except ValueError:
                raise CsvError(f"{path} line {line}: {value_column} {row[vi]!r} is not a number") from None
            if not math.isfinite(value):
                raise CsvError(f"{path} line {line}: {value_column} {row[vi]!r} is not a finite number")
            if previous is not None and when <= previous.time:
                raise CsvError(f"{path} line {line}: {time_column} {row[ti]!r} is not after the previous reading's "
                               f"({previous.time.isoformat()}, line {previous.line}); a learner takes a sensor's "
                               "readings in time order")
            count += 1
            previous = Row(line, when, value)
            yield previous


def check_csv(path: Path, time_column: str, value_column: str, limit: int | None = None) -> int:
    """Reads the whole CSV once (memory stays flat) and returns its number of readings; raises CsvError."""
    n = sum(1 for _ in read_rows(path, time_column, value_column, limit))
    if n == 0:
        raise CsvError(f"{path}: no readings after the header")
    return n


# -- MQTT messages -----------------------------------------------------------------------------


class MalformedMessage(ValueError):
    """A broker message that is not a reading; the message says what is wrong with it."""


@dataclass(frozen=True)
class SensorMessage:
    """One reading taken from the broker."""

    sensor_id: str
    time: dt.datetime  # tz-aware
    value: float


def sensor_topic(prefix: str, sensor_id: str) -> str:
    """The topic of `sensor_id` under `prefix` (readings or forecasts): `<prefix>/<sensor_id>`."""
    return f"{prefix.strip('/')}/{sensor_id}"


def reading_payload(reading: Row | SensorMessage) -> bytes:
    """The MQTT message of one reading: `{"time": "<RFC 3339>", "value": <number>}`."""
    return json.dumps({"time": rfc3339(reading.time), "value": reading.value}).encode()


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedMessage(f"{what} must be a number, got {json.dumps(value)[:60]}")
    value = float(value)
    if not math.isfinite(value):
        raise MalformedMessage(f"{what} must be finite, got {value}")
    return value


def parse_reading(message_topic: str, payload: bytes, prefix: str, now: dt.datetime | None = None) -> SensorMessage:
    """The reading in a message on `<prefix>/<sensor_id>`: JSON `{"time": "<RFC 3339>", "value": <number>}`
    (no "time": now) or a bare JSON number (measured now). Raises MalformedMessage saying what is wrong."""
    head = sensor_topic(prefix, "")
    if not message_topic.startswith(head) or not message_topic[len(head):]:
        raise MalformedMessage(f"topic {message_topic!r} is not {head}<sensor_id>")
    sensor_id = message_topic[len(head):]
    try:
        body = json.loads(payload, parse_constant=float)  # NaN and Infinity parse, then are refused as not finite
    except (UnicodeDecodeError, ValueError):
        raise MalformedMessage(f"payload {bytes(payload[:60])!r} is not JSON") from None
    when = now or dt.datetime.now(dt.UTC)
    if isinstance(body, dict):
        if "value" not in body:
            raise MalformedMessage(f"payload has no \"value\" (keys: {', '.join(sorted(body)) or 'none'})")
        value = _number(body["value"], '"value"')
        if body.get("time") is not None:
            if not isinstance(body["time"], str):
                raise MalformedMessage(f"\"time\" must be an RFC 3339 string, got {json.dumps(body['time'])[:40]}")
            try:
                when = parse_time(body["time"])
            except ValueError:
                raise MalformedMessage(f"time {body['time']!r} is not an RFC 3339 time such as "
                                       "2024-03-04T00:15:00Z") from None
    else:
        value = _number(body, "payload")
    return SensorMessage(sensor_id, when, value)


def forecast_payload(sensor_id: str, target_time: dt.datetime | None, value: float, model_id: str,
                     learner_id: str) -> bytes:
    """The JSON published on `<response_prefix>/<sensor_id>`: the forecast `value` for `target_time`
    (null when the learner gave none), by `model_id` ("" for a learner's live, unsaved model)."""
    return json.dumps({"sensor_id": sensor_id, "target_time": rfc3339(target_time) if target_time else None,
                       "value": value, "model_id": model_id, "learner_id": learner_id}).encode()


# -- brokers -----------------------------------------------------------------------------------


def broker_params(url: str) -> dict:
    """aiomqtt.Client keyword arguments for mqtt://[user:password@]host[:port] (1883) or mqtts://...
    (TLS, 8883); tcp:// and ssl:// are accepted as their aliases. Raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in BROKER_SCHEMES or not parts.hostname:
        raise ValueError(f"broker URL {url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"broker URL {url!r} has no valid port") from None
    tls = BROKER_SCHEMES[parts.scheme]
    params: dict = {"hostname": parts.hostname, "port": port or (8883 if tls else 1883)}
    if parts.username:
        params.update(username=unquote(parts.username), password=unquote(parts.password or ""))
    if tls:
        params["tls_context"] = ssl.create_default_context()
    return params


# -- LearnerService --------------------------------------------------------------------------


def observation(reading: Row | SensorMessage, sensor_id: str, *, scale: float = 1.0):
    """A reading as a LearnerService `Observation` (`scale` multiplies the value, for what-if replays)."""
    from google.protobuf import timestamp_pb2
    from mlmesh.learner.v1 import learner_service_pb2 as pb

    when = timestamp_pb2.Timestamp()
    when.FromDatetime(reading.time.astimezone(dt.UTC))
    return pb.Observation(reading=pb.SensorReading(sensor_id=sensor_id, time=when, value=reading.value * scale))
