"""The sensor wire formats (clients/sensorformat.py) without a broker: what the replay client writes
is what the bridge reads, broker URLs, and the error each malformed reading or CSV line gets."""

from __future__ import annotations

import datetime as dt
import json
import ssl

import pytest

from clients.sensorformat import (CsvError, MalformedMessage, Row, SensorMessage, broker_params, check_csv,
                                  forecast_payload, observation, parse_reading, parse_time, read_rows,
                                  reading_payload, rfc3339, sensor_topic)

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 4, 0, 15, tzinfo=UTC)


# -- times ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("2024-03-04T00:15:00Z", T0),
    ("2024-03-04T02:15:00+02:00", T0),
    ("2024-03-04T00:15:00", T0),  # no offset: UTC
    ("2024-03-04 00:15:00.250000Z", T0 + dt.timedelta(milliseconds=250)),
])
def test_parse_time_gives_aware_utc(text, expected):
    parsed = parse_time(text)
    assert parsed == expected and parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("text", ["noon", "", "2024-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_parse_time_refuses_what_is_not_a_time(text):
    with pytest.raises(ValueError, match="is not an RFC 3339 time"):
        parse_time(text)


def test_rfc3339_round_trips_and_ends_in_z():
    local = dt.datetime(2024, 3, 4, 2, 15, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert rfc3339(local) == "2024-03-04T00:15:00Z"
    assert parse_time(rfc3339(local)) == local


# -- MQTT readings and forecasts -----------------------------------------------------------------

@pytest.mark.parametrize("reading", [Row(3, T0, 21.437), SensorMessage("W4", T0, -0.5), Row(1, T0, 1e-12)])
def test_what_the_client_publishes_the_bridge_reads(reading):
    message = parse_reading(sensor_topic("mlmesh/sensors/", "W4"), reading_payload(reading), "mlmesh/sensors")
    assert message == SensorMessage("W4", reading.time, reading.value)


def test_reading_payload_is_the_documented_json():
    assert json.loads(reading_payload(Row(2, T0, 21.437))) == {"time": "2024-03-04T00:15:00Z", "value": 21.437}


def test_sensor_topic_tolerates_slashes_around_the_prefix():
    assert sensor_topic("/mlmesh/sensors/", "BBB60XX") == "mlmesh/sensors/BBB60XX"
    assert parse_reading("a/b/W6", b"1", "/a/b/", now=T0).sensor_id == "W6"


@pytest.mark.parametrize(("topic", "payload", "expected"), [
    ("mlmesh/sensors/W6", b'{"time": "2024-03-04T00:15:00Z", "value": 3.5}', ("W6", T0, 3.5)),
    ("mlmesh/sensors/W6", b'{"time": "2024-03-04T02:15:00+02:00", "value": 2}', ("W6", T0, 2.0)),
    ("mlmesh/sensors/3640f24ba43a423188979372bae6277a", b"17.25",
     ("3640f24ba43a423188979372bae6277a", dt.datetime(2026, 1, 1, tzinfo=UTC), 17.25)),
])
def test_the_documented_reading_format(topic, payload, expected):
    r = parse_reading(topic, payload, "mlmesh/sensors", now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert (r.sensor_id, r.time, r.value) == expected


@pytest.mark.parametrize("payload", [b"17.25", b'{"value": 17.25}', b'{"value": 17.25, "time": null}'])
def test_a_reading_without_a_time_was_measured_now(payload):
    assert parse_reading("mlmesh/sensors/W4", payload, "mlmesh/sensors", now=T0) == SensorMessage("W4", T0, 17.25)


@pytest.mark.parametrize(("topic", "payload", "message"), [
    ("mlmesh/sensors/W4", b"not json", "is not JSON"),
    ("mlmesh/sensors/W4", b"\xff\xfe", "is not JSON"),
    ("mlmesh/sensors/W4", b'{"time": "2024-03-04T00:15:00Z"}', 'no "value"'),
    ("mlmesh/sensors/W4", b'{"time": "noon", "value": 1}', "not an RFC 3339 time"),
    ("mlmesh/sensors/W4", b'{"time": "0001-01-01T00:00:00+01:00", "value": 1}', "not an RFC 3339 time"),
    ("mlmesh/sensors/W4", b'{"value": "1.5"}', "must be a number"),
    ("mlmesh/sensors/W4", b"NaN", "must be finite"),
    ("mlmesh/sensors/W4", b"true", "must be a number"),
    ("mlmesh/sensors/", b"1", "is not mlmesh/sensors/<sensor_id>"),
    ("other/W4", b"1", "is not mlmesh/sensors/<sensor_id>"),
    ("mlmesh/sensors/W4", b"[1, 2]", "payload must be a number"),
    ("mlmesh/sensors/W4", b"{}", r'no "value" \(keys: none\)'),
    ("mlmesh/sensors/W4", b'{"v": 1}', r'no "value" \(keys: v\)'),
    ("mlmesh/sensors/W4", b'{"value": null}', '"value" must be a number'),
    ("mlmesh/sensors/W4", b'{"value": false}', '"value" must be a number'),
    ("mlmesh/sensors/W4", b'{"value": Infinity}', '"value" must be finite'),
    ("mlmesh/sensors/W4", b"-Infinity", "payload must be finite"),
    ("mlmesh/sensors/W4", b'{"value": 1, "time": 1709511300}', '"time" must be an RFC 3339 string'),
    ("mlmesh/sensors/W4", b'{"value": 1, "time": "9999-12-31T23:59:59-01:00"}', "not an RFC 3339 time"),
    ("mlmesh/sensorsW4", b"1", "is not mlmesh/sensors/<sensor_id>"),
])
def test_malformed_readings_say_what_is_wrong(topic, payload, message):
    with pytest.raises(MalformedMessage, match=message):
        parse_reading(topic, payload, "mlmesh/sensors")


def test_forecast_payload_is_the_documented_json():
    body = json.loads(forecast_payload("W4", dt.datetime(2024, 3, 5, 12, tzinfo=UTC), 21.5, "m-1", "l-1"))
    assert body == {"sensor_id": "W4", "target_time": "2024-03-05T12:00:00Z", "value": 21.5, "model_id": "m-1",
                    "learner_id": "l-1"}


def test_forecast_payload_without_a_target_time():
    body = json.loads(forecast_payload("W4", None, 3.0, "", "l-1"))
    assert body == {"sensor_id": "W4", "target_time": None, "value": 3.0, "model_id": "", "learner_id": "l-1"}


def test_forecast_payload_time_is_utc():
    target = dt.datetime(2024, 3, 5, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert json.loads(forecast_payload("W4", target, 1.0, "m", "l"))["target_time"] == "2024-03-05T12:00:00Z"


# -- broker URLs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "port", "tls"), [
    ("mqtt://broker.example", 1883, False),
    ("tcp://broker.example", 1883, False),
    ("mqtts://broker.example", 8883, True),
    ("ssl://broker.example", 8883, True),
    ("mqtt://broker.example:11883", 11883, False),
    ("ssl://broker.example:18883", 18883, True),
])
def test_broker_url_schemes_and_default_ports(url, port, tls):
    params = broker_params(url)
    assert (params["hostname"], params["port"]) == ("broker.example", port)
    assert isinstance(params.get("tls_context"), ssl.SSLContext) is tls
    assert "username" not in params


def test_broker_url_credentials_are_unquoted():
    params = broker_params("mqtts://meter%40site:p%3Ass@10.0.0.7")
    assert (params["username"], params["password"], params["hostname"]) == ("meter@site", "p:ss", "10.0.0.7")
    assert broker_params("mqtt://only-user@h")["password"] == ""


@pytest.mark.parametrize("url", ["http://broker:1883", "broker:1883", "mqtt://", "mqtt://:1883", "",
                                 "mqtt://broker:99999", "mqtt://broker:port"])
def test_broker_urls_the_bridge_cannot_dial(url):
    with pytest.raises(ValueError, match="broker URL"):
        broker_params(url)


# -- the sensor CSV ------------------------------------------------------------------------------

def write(tmp_path, text: str, name: str = "meter.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_round_trip(tmp_path):
    rows = [Row(i + 2, T0 + i * dt.timedelta(minutes=15), 20.0 + i / 8) for i in range(5)]
    text = "timestamp,meter_id,power_kw\n" + "".join(f"{rfc3339(r.time)},m7,{r.value!r}\n" for r in rows)
    path = write(tmp_path, text)
    assert list(read_rows(path, "timestamp", "power_kw")) == rows
    assert check_csv(path, "timestamp", "power_kw") == 5
    assert [r.value for r in read_rows(path, "timestamp", "power_kw", limit=2)] == [20.0, 20.125]


def test_csv_skips_blank_lines_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftimestamp , power_kw\n\n2024-03-04T00:15:00,1.5\n,\n2024-03-04T00:30:00,2\n".encode())
    assert [(r.line, r.time, r.value) for r in read_rows(path, "timestamp", "power_kw")] == [
        (3, T0, 1.5), (5, T0 + dt.timedelta(minutes=15), 2.0)]


@pytest.mark.parametrize(("text", "message"), [
    ("time,kw\n2024-03-04T00:15:00,1\n", r"no column 'timestamp' or 'power_kw'; its columns are 'time', 'kw'"),
    ("", "its columns are none"),
    ("timestamp,power_kw\n2024-03-04T00:15:00\n", "line 2: 1 fields, the header has 2"),
    ("timestamp,power_kw\n2024-03-04T00:15:00,nan\n", "line 2: power_kw 'nan' is not a finite number"),
    ("timestamp,power_kw\n2024-03-04T00:15:00,1\n2024-03-04T00:15:00,2\n",
     "line 3: timestamp '2024-03-04T00:15:00' is not after the previous reading's"),
    ("timestamp,power_kw\n9999-12-31T23:59:59-01:00,1\n", "line 2: timestamp .* is not an ISO 8601 time"),
    ("timestamp,power_kw\n", "no readings after the header"),
])
def test_csv_errors_name_the_line_and_the_fix(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(CsvError, match=message):
        check_csv(path, "timestamp", "power_kw")


# -- LearnerService ------------------------------------------------------------------------------

def test_observation_carries_the_reading():
    obs = observation(Row(2, T0, 2.5), "W4", scale=1.6)
    assert obs.reading.sensor_id == "W4" and obs.reading.value == pytest.approx(4.0)
    assert obs.reading.time.ToDatetime(tzinfo=UTC) == T0
    assert observation(SensorMessage("W6", T0, 1.0), "W6").reading.value == 1.0
