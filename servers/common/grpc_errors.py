"""The one table from domain errors to gRPC status codes, with google.rpc details.

Every status a client sees carries a `google.rpc.Status` in `grpc-status-details-bin`
whose details hold an `ErrorInfo {reason, domain: "<server>.mlmesh", metadata}` (AIP-193).
Calls from one mesh server to another turn the peer's status back into a domain error
with `error_from_rpc`, so the reason survives the hop.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from servers.common import errors

STATUS_TABLE: dict[type[errors.MeshError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DataLoss: grpc.StatusCode.DATA_LOSS,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Cancelled: grpc.StatusCode.CANCELLED,
}
_ERROR_BY_CODE = {code: cls for cls, code in STATUS_TABLE.items()}


def status_code_for(exc: errors.MeshError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_TABLE:
            return STATUS_TABLE[cls]
    return grpc.StatusCode.INTERNAL


# A status travels as HTTP/2 trailers (grpc-message, grpc-status-details-bin): a message that
# echoed a 70,000-character field would pass Envoy's header limit and reset the stream. Every
# status is cut to these sizes here, whatever the raising code put in it.
MAX_MESSAGE_CHARS = 400
MAX_METADATA_ITEMS = 16
MAX_METADATA_CHARS = 200


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def to_status(exc: errors.MeshError, domain: str) -> grpc.Status:
    """A grpc.Status (code, message, trailing metadata with google.rpc details) for `exc`, its
    message and ErrorInfo metadata cut to a few hundred characters."""
    code = status_code_for(exc)
    metadata = {_cut(str(k), 64): _cut(str(v), MAX_METADATA_CHARS)
                for k, v in list(exc.metadata.items())[:MAX_METADATA_ITEMS]}
    info = error_details_pb2.ErrorInfo(reason=_cut(exc.reason, 64), domain=domain, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=_cut(exc.message, MAX_MESSAGE_CHARS), details=[detail])
    return rpc_status.to_status(status)


def internal_status(request_id: str, domain: str) -> grpc.Status:
    """What a client sees for a bug: no traceback, a request id to find it in the server log."""
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=domain, metadata={"request_id": request_id})
    detail = any_pb2.Any()
    detail.Pack(info)
    message = f"internal error; the server log has the details under request id {request_id}"
    status = status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message=message, details=[detail])
    return rpc_status.to_status(status)


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo a mesh server attached to `err`, if any."""
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
    except (ValueError, AttributeError):
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def error_from_rpc(err: grpc.RpcError, peer: str) -> errors.MeshError:
    """Turns a peer server's status into the matching domain error."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    info = error_info(err)
    reason = info.reason if info is not None else None
    metadata = dict(info.metadata) if info is not None else {}
    if code == grpc.StatusCode.UNAVAILABLE or code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.Unavailable(f"{peer} is unavailable: {details}", reason=reason or "PEER_UNAVAILABLE")
    cls = _ERROR_BY_CODE.get(code)
    if cls is None:
        return errors.Unavailable(f"{peer} failed: {details}", reason=reason or "PEER_FAILED", metadata=metadata)
    return cls(details or f"{peer} returned {code.name}", reason=reason, metadata=metadata)
