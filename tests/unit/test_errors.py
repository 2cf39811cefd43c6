"""The error table: every domain error maps to one status, with ErrorInfo details."""

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from servers.common import errors
from servers.common.grpc_errors import STATUS_TABLE, internal_status, status_code_for, to_status


def _all_error_classes():
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.MeshError)
            and c is not errors.MeshError]


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_domain_error_has_a_status(cls):
    assert cls in STATUS_TABLE
    assert status_code_for(cls("x")) not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


def test_status_carries_error_info():
    exc = errors.FailedPrecondition("model already verified", reason="ALREADY_VERIFIED", metadata={"a": 1})
    status = to_status(exc, "ledger.mlmesh")
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION
    assert status.details == "model already verified"
    (key, raw), = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    rpc = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert rpc.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == ("ALREADY_VERIFIED", "ledger.mlmesh", {"a": "1"})


def test_subclass_of_a_domain_error_maps_like_its_parent():
    class Special(errors.NotFound):
        pass

    assert status_code_for(Special("x")) == grpc.StatusCode.NOT_FOUND


def test_internal_status_has_no_traceback_and_names_the_request():
    status = internal_status("rid123", "registry.mlmesh")
    assert status.code == grpc.StatusCode.INTERNAL
    assert "rid123" in status.details and "Traceback" not in status.details
