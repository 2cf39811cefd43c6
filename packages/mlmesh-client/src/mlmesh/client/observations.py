"""What a learner learns from and predicts on: `Observation` messages from plain Python values.

    observation([0.1, 0.2, 0.3], target=1.0)              # a feature row (tabular learners)
    observation(sensor_id="meter-7", time=t, value=4.2)    # a sensor reading (power-forecast learners)
    observation(image=png_bytes)                           # an image (image transformers)

`learners.learn(...)`, `predict(...)`, `predict_stream(...)` and `explain(...)` accept these, the
dicts with the same keys (`{"values": [...], "target": 1.0}`), a bare sequence of numbers, or
`Observation` messages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from google.protobuf import timestamp_pb2

from mlmesh.learner.v1 import learner_service_pb2 as lpb


def _timestamp(value: Any) -> timestamp_pb2.Timestamp:
    if isinstance(value, timestamp_pb2.Timestamp):
        return value
    ts = timestamp_pb2.Timestamp()
    if isinstance(value, str):
        ts.FromJsonString(value if value[-1:] in "Zz" or "+" in value[10:] else value + "Z")
    elif isinstance(value, dt.datetime):
        ts.FromDatetime(value.astimezone(dt.timezone.utc) if value.tzinfo else value)
    else:
        raise TypeError(f"a time is a datetime, an RFC 3339 string or a Timestamp, not {type(value).__name__}")
    return ts


def observation(values: Sequence[float] | None = None, *, target: float | None = None, sensor_id: str | None = None,
                time: Any = None, value: float | None = None, image: bytes | None = None) -> lpb.Observation:
    """One observation: a feature row (`values`), a sensor reading (`sensor_id`, `time`, `value`) or
    an `image`, with an optional `target` (what the learner should have predicted)."""
    kinds = sum(x is not None for x in (values, image)) + (sensor_id is not None or value is not None)
    if kinds != 1:
        raise ValueError("an observation is exactly one of: values=[...], sensor_id/time/value, image=bytes")
    obs = lpb.Observation()
    if values is not None:
        obs.row.values.extend(float(v) for v in values)
    elif image is not None:
        obs.image.data = bytes(image)
    else:
        if not sensor_id or value is None or time is None:
            raise ValueError("a sensor reading needs sensor_id, time and value")
        obs.reading.sensor_id = sensor_id
        obs.reading.time.CopyFrom(_timestamp(time))
        obs.reading.value = float(value)
    if target is not None:
        obs.target = float(target)
    return obs


def to_observation(item: Any) -> lpb.Observation:
    """An `Observation` from a message, a dict of `observation`'s arguments, bytes (an image) or a
    sequence of numbers (a feature row)."""
    if isinstance(item, lpb.Observation):
        return item
    if isinstance(item, Mapping):
        return observation(**item)
    if isinstance(item, (bytes, bytearray)):
        return observation(image=item)
    if isinstance(item, Sequence) and not isinstance(item, str) and all(isinstance(v, Real) for v in item):
        return observation(item)
    raise TypeError(f"cannot make an observation of {type(item).__name__}: pass an Observation, a dict such as "
                    "{'values': [...], 'target': 1.0}, a sequence of numbers or image bytes")
