"""datetime <-> google.protobuf.Timestamp, for every server's converters (always UTC)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2


def timestamp_to_proto(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def timestamp_from_proto(ts: timestamp_pb2.Timestamp) -> dt.datetime:
    return ts.ToDatetime(tzinfo=dt.UTC)
