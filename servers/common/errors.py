"""Domain errors. They carry no transport: `servers.common.grpc_errors` maps each
class to one gRPC status code (the only table of its kind in mlmesh).

Raise them from domain and adapter code with a message a person can act on and a
stable UPPER_SNAKE `reason` (it becomes `google.rpc.ErrorInfo.reason`).
"""

from __future__ import annotations


class MeshError(Exception):
    """Base of every error a client may see. Never raise it directly."""

    default_reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}


class InvalidArgument(MeshError):
    """The request is malformed: fix the request."""

    default_reason = "INVALID_ARGUMENT"


class NotFound(MeshError):
    """The named resource does not exist."""

    default_reason = "NOT_FOUND"


class AlreadyExists(MeshError):
    """The resource to create exists already."""

    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(MeshError):
    """The system is not in a state where the request can run (e.g. a second verify)."""

    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(MeshError):
    """The caller is known but not allowed."""

    default_reason = "PERMISSION_DENIED"


class Unauthenticated(MeshError):
    """The caller is not known."""

    default_reason = "UNAUTHENTICATED"


class ResourceExhausted(MeshError):
    """A limit was hit (size, quota)."""

    default_reason = "RESOURCE_EXHAUSTED"


class DataLoss(MeshError):
    """Stored bytes do not match what the ledger or database records."""

    default_reason = "DATA_LOSS"


class Unavailable(MeshError):
    """A dependency (database, chain node, peer server) cannot be reached; retry later."""

    default_reason = "UNAVAILABLE"


class Aborted(MeshError):
    """A concurrent change got in the way; retry."""

    default_reason = "ABORTED"


class Cancelled(MeshError):
    """The client went away or cancelled."""

    default_reason = "CANCELLED"
