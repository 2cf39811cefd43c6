"""The one input check every server gets: each request message, walked by its descriptor.

`MeshInterceptor` calls `check_message` on every request a server receives (each message of a
client stream as it arrives), before the servicer sees it. The rules come from the contract:
a field's `(mlmesh.common.v1.field)` option (proto/mlmesh/common/v1/validation.proto), or the
defaults there for fields without one — so a new server, or a third-party contract such as the
Open Inference Protocol, is covered without code:

- strings: at most `max_length` characters (default 256) and no control character (NUL
  included); `text: true` fields (free text) may hold any character but NUL;
- enums: only the numbers the contract defines (proto3 keeps unknown ones);
- floats: finite unless `allow_non_finite`;
- integers: at least `min_value` when set (sizes, offsets, page sizes);
- google.protobuf.Timestamp: within its documented range (0001-01-01 to 9999-12-31);
- repeated fields: every element; maps: keys and values.

A broken rule raises `errors.InvalidArgument` naming the field's path (`learner.spec.backend`,
`inputs[2].row.values[5]`) and quoting at most a few dozen characters of the value.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from mlmesh.common.v1 import validation_pb2
from servers.common import errors

DEFAULT_STRING_MAX = 256
QUOTE_CHARS = 40  # how much of a refused value an error message shows

# Identifiers and names: no C0 control, DEL or C1 control. Free text (log lines, failure
# reasons, JSON) may hold any of them but NUL, which PostgreSQL and file names refuse.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROL = re.compile("\x00")

_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_INTS = (
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64,
)


def quote(value: str | bytes, limit: int = QUOTE_CHARS) -> str:
    """`value` for an error message: its repr, cut to `limit` characters with "…" when longer."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit])[:-1] + "…" + repr(value[:1])[-1]


def _fail(path: str, reason: str, message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, reason=reason, metadata={"field": path[:200]})


class _Fault(Exception):
    """A broken rule, raised by a value's check without the field's path, which the walk adds on the
    way out (`at`): no path string is built for a request that passes, which is nearly all of them."""

    def __init__(self, reason: str, message: Callable[[str], str]):
        self.reason, self.message, self.path = reason, message, ""

    def at(self, outer: str) -> _Fault:
        self.path = outer + self.path if self.path.startswith("[") or not self.path else f"{outer}.{self.path}"
        return self

    def error(self) -> errors.InvalidArgument:
        return _fail(self.path, self.reason, self.message(self.path))


@dataclass(frozen=True)
class Rules:
    """The effective rules of one field (the option, or the defaults)."""

    max_length: int
    text: bool
    min_value: int | None
    allow_non_finite: bool


def rules_of(field: FieldDescriptor) -> Rules:
    """The rules a field declares in the contract, with the defaults filled in."""
    opts = field.GetOptions()
    declared = opts.Extensions[validation_pb2.field] if opts.HasExtension(validation_pb2.field) else None
    if declared is None:
        declared = validation_pb2.FieldRules()
    max_length = declared.max_length
    if not max_length and field.type == FieldDescriptor.TYPE_STRING:
        max_length = DEFAULT_STRING_MAX
    return Rules(
        max_length=max_length,
        text=declared.text,
        min_value=declared.min_value if declared.HasField("min_value") else None,
        allow_non_finite=declared.allow_non_finite,
    )


# A check of one value of one field: value -> None, or raise _Fault.
_Check = Callable[[object], None]


def _string_check(rules: Rules) -> _Check:
    search = (_TEXT_CONTROL if rules.text else _CONTROL).search
    limit = rules.max_length

    def check(value) -> None:
        if len(value) > limit:
            raise _Fault("FIELD_TOO_LONG", lambda path: f"{path} is too long: {len(value)} characters, at most {limit}")
        bad = search(value)
        if bad is not None:
            raise _Fault("FIELD_CONTROL_CHARACTER", lambda path: (
                f"{path} contains the control character U+{ord(bad.group()):04X} at position {bad.start()} "
                f"({quote(value)}); remove it"))

    return check


def _bytes_check(rules: Rules) -> _Check | None:
    limit = rules.max_length
    if not limit:
        return None

    def check(value) -> None:
        if len(value) > limit:
            raise _Fault("FIELD_TOO_LONG", lambda path: f"{path} is too long: {len(value)} bytes, at most {limit}")

    return check


def _enum_check(field: FieldDescriptor) -> _Check:
    enum = field.enum_type
    defined = frozenset(enum.values_by_number)
    names = ", ".join(f"{v.name}={v.number}" for v in enum.values[:8]) + (", …" if len(enum.values) > 8 else "")

    def check(value) -> None:
        if value not in defined:
            raise _Fault("FIELD_UNKNOWN_ENUM_VALUE",
                         lambda path: f"{path} is {value}, which {enum.full_name} does not define ({names})")

    return check


def _float_check(allow_non_finite: bool) -> _Check | None:
    if allow_non_finite:
        return None

    def check(value) -> None:
        if not math.isfinite(value):
            raise _Fault("FIELD_NOT_FINITE", lambda path: f"{path} is {value}; it must be a finite number")

    return check


def _int_check(minimum: int | None) -> _Check | None:
    if minimum is None:
        return None

    def check(value) -> None:
        if value < minimum:
            raise _Fault("FIELD_TOO_SMALL", lambda path: f"{path} is {value}; it must be at least {minimum}")

    return check


class _Plan:
    """How to check one message type: per field number, the field's name, whether it is
    repeated, the check of one value (None: nothing to check) and whether it is a float
    field that must be finite. `idle`: no field of the type (nor of any type it holds) has
    anything to check, so its messages are not walked at all."""

    __slots__ = ("fields", "idle")

    def __init__(self) -> None:
        self.fields: dict[int, tuple[str, bool, _Check | None, bool]] = {}
        self.idle = False


_plans: dict[Descriptor, _Plan] = {}


def _value_check(field: FieldDescriptor, rules: Rules) -> _Check | None:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return _string_check(rules)
    if t == FieldDescriptor.TYPE_BYTES:
        return _bytes_check(rules)
    if t == FieldDescriptor.TYPE_ENUM:
        return _enum_check(field)
    if t in _FLOATS:
        return _float_check(rules.allow_non_finite)
    if t in _INTS:
        return _int_check(rules.min_value)
    if t in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        return _message_check(field)
    return None  # bool, unsigned integers


def _message_check(field: FieldDescriptor) -> _Check | None:
    message_type = field.message_type
    if message_type.GetOptions().map_entry:
        key_field, value_field = message_type.fields_by_name["key"], message_type.fields_by_name["value"]
        key_check = _value_check(key_field, rules_of(key_field))
        value_check = _value_check(value_field, rules_of(value_field))

        def check_map(mapping) -> None:
            for key, value in mapping.items():
                item = f"[{quote(key, 20) if isinstance(key, str) else key}]"
                try:
                    if key_check is not None:
                        key_check(key)
                except _Fault as fault:
                    raise fault.at(f"{item} (key)") from None
                try:
                    if value_check is not None:
                        value_check(value)
                except _Fault as fault:
                    raise fault.at(item) from None

        return check_map

    if message_type.full_name == "google.protobuf.Timestamp":
        return _timestamp_check

    plan = _plan_for(message_type)
    if plan.idle:
        return None
    return _check


# google.protobuf.Timestamp's own range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z):
# anything outside cannot become a datetime.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _timestamp_check(value) -> None:
    if not _MIN_SECONDS <= value.seconds <= _MAX_SECONDS or not 0 <= value.nanos <= 999_999_999:
        raise _Fault("FIELD_OUT_OF_RANGE", lambda path: (
            f"{path} is not a valid timestamp (seconds {value.seconds}, nanos {value.nanos}); it must lie "
            "between 0001-01-01 and 9999-12-31 with nanos in [0, 999999999]"))


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 dropped `label` for `is_repeated`; the clients' protobuf 5.29-6 have only `label`
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _plan_for(descriptor: Descriptor) -> _Plan:
    plan = _plans.get(descriptor)
    if plan is not None:
        return plan
    plan = _Plan()
    _plans[descriptor] = plan  # before the fields: recursive types find it (and are walked)
    for field in descriptor.fields:
        rules = rules_of(field)
        is_map = field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
        repeated = _is_repeated(field) and not is_map
        check = _value_check(field, rules)
        if check is not None:
            plan.fields[field.number] = (field.name, repeated, check,
                                         field.type in _FLOATS and not rules.allow_non_finite)
    plan.idle = not plan.fields
    return plan


def _check(message: Message) -> None:
    fields = (_plans.get(message.DESCRIPTOR) or _plan_for(message.DESCRIPTOR)).fields
    for field, value in message.ListFields():
        entry = fields.get(field.number)
        if entry is None:  # nothing to check, or an extension
            continue
        name, repeated, check, finite_floats = entry
        if not repeated:
            try:
                check(value)
            except _Fault as fault:
                raise fault.at(name) from None
            continue
        if finite_floats and math.isfinite(sum(value)):
            continue  # every element is finite (a sum of finite values that overflows falls through)
        for i, item in enumerate(value):
            try:
                check(item)
            except _Fault as fault:
                raise fault.at(f"{name}[{i}]") from None


def check_message(message: Message) -> None:
    """Raises `errors.InvalidArgument` for the first field of `message` that breaks its rules."""
    try:
        _check(message)
    except _Fault as fault:
        raise fault.error() from None


def check_fields(values: dict, message_type: type[Message], prefix: str = "") -> None:
    """The rules of `message_type`'s fields applied to plain values that map onto them (an HTTP
    front's multipart metadata, a protocol's own JSON): each key naming a scalar or repeated scalar
    field is set on a `message_type` message, which `check_message` then walks, so REST and gRPC
    share one set of limits. Keys naming no such field are left to the caller. A value of the
    wrong type (or an integer out of the field's range) is INVALID_ARGUMENT too. `prefix` goes
    before the field's name in the error (`metadata.`)."""
    message = message_type()
    fields = message.DESCRIPTOR.fields_by_name
    for key, value in values.items():
        field = fields.get(key)
        if field is None or field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            continue
        try:
            if _is_repeated(field):
                getattr(message, key).extend(value)
            else:
                setattr(message, key, value)
        except (TypeError, ValueError):
            raise _fail(prefix + key, "FIELD_WRONG_TYPE",
                        f"{prefix}{key} is not a valid {_type_name(field)} ({quote(str(value))})") from None
    try:
        _check(message)
    except _Fault as fault:
        fault.path = prefix + fault.path
        raise fault.error() from None


def _type_name(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_STRING:
        return "string"
    if field.type in _FLOATS:
        return "number"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "boolean"
    if field.type == FieldDescriptor.TYPE_ENUM:
        return f"{field.enum_type.name} value"
    return "64-bit integer" if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64,
                                              FieldDescriptor.TYPE_UINT64) else "integer"


def check_text(path: str, value: str, max_length: int = DEFAULT_STRING_MAX) -> None:
    """A free-standing identifier or name (a query parameter, a path segment) by the default string
    rules: at most `max_length` characters, no control character."""
    try:
        _string_check(Rules(max_length=max_length, text=False, min_value=None, allow_non_finite=False))(value)
    except _Fault as fault:
        fault.path = path
        raise fault.error() from None


# -- the interceptor ------------------------------------------------------------------------------


class Malformed:
    """What the interceptor's deserializer returns for bytes that are not a message of the RPC's
    request type (gRPC itself would answer UNKNOWN or INTERNAL); `check_request` refuses it."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = type_name


def _tolerant(deserialize):
    if deserialize is None:
        return None

    def parse(raw: bytes):
        try:
            return deserialize(raw)
        except DecodeError:
            return Malformed(getattr(deserialize, "__qualname__", "").split(".")[0] or "request")

    return parse


def check_request(request) -> None:
    """`check_message`, and INVALID_ARGUMENT for a request that did not parse."""
    if isinstance(request, Malformed):
        raise errors.InvalidArgument(f"the request is not a valid {request.type_name} message (the protobuf wire "
                                     "format is corrupt)", reason="MESSAGE_MALFORMED")
    check_message(request)


async def _checked_stream(messages: AsyncIterator[Message]) -> AsyncIterator[Message]:
    """Each message of a client stream, checked as it arrives (nothing is buffered)."""
    async for message in messages:
        check_request(message)
        yield message


class ValidationInterceptor(grpc.aio.ServerInterceptor):
    """Checks every request message of every RPC (health and reflection aside) before the
    servicer sees it. Installed by `MeshServer` inside `MeshInterceptor`, which maps the
    `InvalidArgument` it raises to a status like any other domain error. The checking handler of
    a method is built once (grpc.aio asks the interceptors for a handler on every call)."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or details.method.startswith("/grpc."):
            return handler
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _checking(handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped


def checking_handler(full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """`handler` with every request message checked before it runs (what `ValidationInterceptor`
    installs, applied once to a handler: `MeshServer` wraps its services' handlers at registration)."""
    return handler if full_method.startswith("/grpc.") else _checking(handler)


def _checking(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    deserialize, serialize = _tolerant(handler.request_deserializer), handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_unary_in(handler.unary_unary), deserialize, serialize)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_stream_in(handler.stream_unary), deserialize, serialize)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_streaming(handler.unary_stream, False), deserialize, serialize)
    return grpc.stream_stream_rpc_method_handler(_streaming(handler.stream_stream, True), deserialize, serialize)


def _unary_in(behavior):
    async def wrapper(request, context):
        check_request(request)
        return await behavior(request, context)

    return wrapper


def _stream_in(behavior):
    async def wrapper(request_iterator, context):
        return await behavior(_checked_stream(request_iterator), context)

    return wrapper


def _streaming(behavior, stream_in: bool):
    async def wrapper(request, context):
        if stream_in:
            request = _checked_stream(request)
        else:
            check_request(request)
        result = behavior(request, context)
        if inspect.isasyncgen(result):
            async for response in result:
                yield response
        else:
            await result

    return wrapper
