"""One exception hierarchy for every failed call.

Every error the SDK raises is an `MlmeshError` carrying the gRPC status `code`, the server's
`message`, the `reason` and `domain` of the `google.rpc.ErrorInfo` the mesh attaches
(`DATASET_NOT_FOUND`, `registry.mlmesh`, ...), its `metadata`, and the `request_id` the server
logged the call under (`x-request-id`). Catch a subclass to handle one status:

    try:
        client.datasets.get(dataset_id)
    except mlmesh.client.errors.NotFound as exc:
        print(exc.reason, exc.request_id)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
REQUEST_ID_KEY = "x-request-id"


class MlmeshError(Exception):
    """A call to the mesh failed."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, reason: str = "", domain: str = "",
                 metadata: Mapping[str, str] | None = None, request_id: str = ""):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.request_id = request_id

    def __str__(self) -> str:
        extra = ", ".join(part for part in (self.reason, f"request id {self.request_id}" if self.request_id else "")
                          if part)
        return f"{self.code.name}: {self.message}" + (f" ({extra})" if extra else "")


class InvalidArgument(MlmeshError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(MlmeshError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(MlmeshError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(MlmeshError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(MlmeshError):
    code = grpc.StatusCode.UNAUTHENTICATED


class FailedPrecondition(MlmeshError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(MlmeshError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class OutOfRange(MlmeshError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Aborted(MlmeshError):
    code = grpc.StatusCode.ABORTED


class Cancelled(MlmeshError):
    code = grpc.StatusCode.CANCELLED


class DeadlineExceeded(MlmeshError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unavailable(MlmeshError):
    code = grpc.StatusCode.UNAVAILABLE


class Unimplemented(MlmeshError):
    code = grpc.StatusCode.UNIMPLEMENTED


class DataLoss(MlmeshError):
    code = grpc.StatusCode.DATA_LOSS


class Internal(MlmeshError):
    code = grpc.StatusCode.INTERNAL


class IntegrityError(DataLoss):
    """Downloaded bytes do not hash to what the mesh recorded (checked by the client)."""


_BY_CODE: dict[grpc.StatusCode, type[MlmeshError]] = {
    cls.code: cls for cls in (InvalidArgument, NotFound, AlreadyExists, PermissionDenied, Unauthenticated,
                              FailedPrecondition, ResourceExhausted, OutOfRange, Aborted, Cancelled,
                              DeadlineExceeded, Unavailable, Unimplemented, DataLoss, Internal)
}


def error_class(code: grpc.StatusCode) -> type[MlmeshError]:
    return _BY_CODE.get(code, MlmeshError)


def _metadata_value(pairs: Iterable | None, key: str):
    for k, v in pairs or ():
        if k == key:
            return v
    return None


def from_rpc_error(exc: grpc.RpcError) -> MlmeshError:
    """The `MlmeshError` for a failed call (sync or asyncio), with its ErrorInfo and request id."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = (exc.details() if hasattr(exc, "details") else "") or str(code.name)
    try:
        trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    except Exception:  # a call that never started has no metadata
        trailing = None
    reason = domain = ""
    info_metadata: dict[str, str] = {}
    raw = _metadata_value(trailing, STATUS_DETAILS_KEY)
    if raw:
        try:
            status = status_pb2.Status.FromString(raw)
        except Exception:  # not a google.rpc.Status: keep code and message
            status = None
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain, info_metadata = info.reason, info.domain, dict(info.metadata)
                break
    request_id = _metadata_value(trailing, REQUEST_ID_KEY) or info_metadata.get("request_id", "")
    if isinstance(request_id, bytes):
        request_id = request_id.decode(errors="replace")
    return error_class(code)(message, code=code, reason=reason, domain=domain, metadata=info_metadata,
                             request_id=request_id)
