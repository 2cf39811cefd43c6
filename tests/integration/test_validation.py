"""Hostile input against our real Registry on port 0 (embedded PostgreSQL, real Ledger on Anvil):
every request is checked against the contract's field rules before the servicer sees it
(servers.common.validation), so hostile values are INVALID_ARGUMENT naming the field, with a short
message, and nothing is stored."""

from __future__ import annotations

import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc

from servers.common.grpc_errors import MAX_MESSAGE_CHARS, error_info

ORG = "smart-agri-ll"
UNKNOWN_MODEL = "5d066d58-06de-47ab-a2f6-c8f413e21947"


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _upload(*messages):
    async def gen():
        for message in messages:
            yield message

    return gen()


async def _nothing_stored(stub, server) -> None:
    listed = await stub.ListDatasets(svc.ListDatasetsRequest())
    assert list(listed.datasets) == []
    assert not [p for p in server.settings.storage.root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("request_, rpc", [
    (svc.ListDatasetsRequest(organization_id="smart\x00agri"), "ListDatasets"),
    (svc.ListModelsRequest(organization_id="smart\x00agri"), "ListModels"),
    (svc.ListModelsRequest(dataset_id="\x00"), "ListModels"),
])
async def test_nul_in_a_list_filter_is_invalid_argument(registry_stub, request_, rpc):
    err = await _refused(getattr(registry_stub, rpc)(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert error_info(err).reason == "FIELD_CONTROL_CHARACTER"
    assert "U+0000" in err.details()


async def test_an_undefined_enum_value_is_invalid_argument(registry_stub):
    err = await _refused(registry_stub.ReportTrainingStatus(svc.ReportTrainingStatusRequest(
        model_id=UNKNOWN_MODEL, training_job_id=UNKNOWN_MODEL, state=42)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    info = error_info(err)
    assert (info.reason, info.metadata["field"]) == ("FIELD_UNKNOWN_ENUM_VALUE", "state")
    assert "STATE_FAILED=4" in err.details()
    # a defined value reaches the servicer, which answers for the unknown model
    err = await _refused(registry_stub.ReportTrainingStatus(svc.ReportTrainingStatusRequest(
        model_id=UNKNOWN_MODEL, training_job_id=UNKNOWN_MODEL, state=model_pb2.Model.STATE_TRAINING)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("field", ["display_name", "organization_id", "filename", "samples_dimension"])
async def test_a_very_long_string_is_refused_with_a_short_message(registry_stub, registry_server, field):
    meta = {"organization_id": ORG, "display_name": "meters", field: "é" * 70_000}
    err = await _refused(registry_stub.UploadDataset(_upload(
        svc.UploadDatasetRequest(**meta, chunk=httpbody_pb2.HttpBody(data=b"a,b\n1,2\n")))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(err).reason == "FIELD_TOO_LONG"
    assert err.details().startswith(f"{field} is too long: 70000 characters")
    assert len(err.details()) <= MAX_MESSAGE_CHARS
    await _nothing_stored(registry_stub, registry_server)


async def test_a_bad_message_late_in_an_upload_stream_stores_nothing(registry_stub, registry_server):
    """Each message of a client stream is checked as it arrives: the metadata were fine and bytes
    already streamed when the third message brings a content type with a control character."""
    err = await _refused(registry_stub.UploadDataset(_upload(
        svc.UploadDatasetRequest(organization_id=ORG, display_name="meters",
                                 chunk=httpbody_pb2.HttpBody(data=b"x" * 100_000)),
        svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=b"y" * 100_000)),
        svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(content_type="text/csv\r\nX-Evil: 1", data=b"z")),
    )))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(err).metadata["field"] == "chunk.content_type"
    await _nothing_stored(registry_stub, registry_server)


async def test_bytes_that_are_not_a_message_are_invalid_argument(registry_server, registry_stub):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{registry_server.port}") as channel:
        unary = channel.unary_unary("/mlmesh.registry.v1.RegistryService/GetDataset")
        err = await _refused(unary(b"\xff\xff\xff\xff"))
        assert (err.code(), error_info(err).reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MESSAGE_MALFORMED")
        stream = channel.stream_unary("/mlmesh.registry.v1.RegistryService/UploadDataset")
        first = svc.UploadDatasetRequest(organization_id=ORG, display_name="x").SerializeToString()
        err = await _refused(stream(iter([first, b"\x0a\xff\xff\xff\x0f"])))
        assert (err.code(), error_info(err).reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MESSAGE_MALFORMED")
    await _nothing_stored(registry_stub, registry_server)
