"""Hypothesis strategies for any protobuf message, built from its descriptor: well-formed values
(ids of the right shape, small numbers, defined enum values) mixed with hostile ones (NUL and
other control characters, strings far past every limit, undefined enum numbers, NaN and
infinities, negative sizes, random bytes, ids that name nothing)."""

from __future__ import annotations

import functools
import math
import uuid

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

FUZZ_ORG = "fuzz-org"
MAX_DEPTH = 3

_HOSTILE_STRINGS = (
    "\x00", "a\x00b", "\x1b[31m", "line\nbreak", "\u202eevil", "zero\u200bwidth", "../../etc/passwd",
    "%s%n%x", "' OR 1=1 --", "*", " ", "é" * 300, "x" * 70_000, "\ud7ff\ue000\U0010ffff",
)
_WELL_FORMED_STRINGS = (FUZZ_ORG, "smart-energy-ll", "sklearn", "tabular", "regression", "text/csv",
                        "data.csv", "(1,32,32)", "STATE_FAILED", "pytorch", "FP64", "input-0")

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=24)
strings = st.one_of(
    st.sampled_from(_WELL_FORMED_STRINGS),
    st.uuids().map(str),  # well-formed ids that name nothing
    _text,
    st.sampled_from(_HOSTILE_STRINGS),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=700),
)
byte_strings = st.one_of(st.binary(max_size=64), st.just(b"\x00" * 4096), st.binary(min_size=1000, max_size=5000))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, -1.0, 0.5]))

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(lo: int, hi: int):
    return st.one_of(st.integers(max(lo, -3), min(hi, 100)), st.sampled_from([lo, hi, max(lo, -1)]),
                     st.integers(lo, hi))


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _scalar(field: FieldDescriptor, depth: int):
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return strings
    if t == FieldDescriptor.TYPE_BYTES:
        return byte_strings
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return floats if t == FieldDescriptor.TYPE_DOUBLE else floats.filter(
            lambda v: not math.isfinite(v) or abs(v) < 3e38)
    if t == FieldDescriptor.TYPE_ENUM:
        defined = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(defined), st.integers(-5, 1000))
    if t in _INT_RANGES:
        return _integers(*_INT_RANGES[t])
    if t in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        return _fields(field.message_type, depth + 1)
    raise AssertionError(f"no strategy for field type {t} of {field.full_name}")


def _fields(descriptor: Descriptor, depth: int):
    """A strategy of {field name: value} dicts for `descriptor` (each field present or not)."""
    if depth > MAX_DEPTH:
        return st.just({})
    optional = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            optional[field.name] = st.dictionaries(_scalar(key, depth), _scalar(value, depth), max_size=2)
        elif _is_repeated(field):
            optional[field.name] = st.lists(_scalar(field, depth), max_size=3)
        else:
            optional[field.name] = _scalar(field, depth)
    return st.fixed_dictionaries({}, optional=optional)


def _fill(message, values: dict) -> None:
    descriptor = message.DESCRIPTOR
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(message, name)
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(target[k], v)
                else:
                    target[k] = v
        elif _is_repeated(field):
            for item in value:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(target.add(), item)
                else:
                    target.append(item)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.SetInParent()
            _fill(target, value)
        else:
            setattr(message, name, value)


@functools.cache
def messages(message_class):
    """Messages of `message_class`: random fields, hostile or not."""
    def build(values: dict):
        message = message_class()
        _fill(message, values)
        return message

    return _fields(message_class.DESCRIPTOR, 0).map(build)


def wire(message_class):
    """What one message of a stream is on the wire: usually a message, sometimes random bytes."""
    return st.one_of(messages(message_class).map(lambda m: m.SerializeToString()),
                     st.binary(min_size=1, max_size=64).filter(lambda b: b != b"\x00"))


def random_id() -> str:
    return str(uuid.uuid4())
