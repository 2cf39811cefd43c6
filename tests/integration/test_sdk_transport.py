"""The SDK's call discipline against real gRPC servers on port 0: retries with backoff on
UNAVAILABLE for idempotent calls only, a deadline on every call, and statuses turned into the
exception hierarchy with the ErrorInfo reason and the request id."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

import mlmesh
import mlmesh.aio
from mlmesh.client import errors

FAST = mlmesh.Retry(attempts=3, initial_backoff=0.01, max_backoff=0.02)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Counter:
    """A token callable: the SDK calls it once per attempt."""

    def __init__(self):
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return "token"


def test_idempotent_calls_are_retried_on_unavailable_and_others_are_not(tmp_path):
    # Prepare: nothing listens on the port
    token = Counter()
    client = mlmesh.Client(f"127.0.0.1:{_closed_port()}", token=token, retry=FAST)

    # Execute + Assert: a Get is tried `attempts` times, then raises Unavailable
    with pytest.raises(errors.Unavailable):
        client.datasets.get("d-1")
    assert token.calls == 3
    # an upload (not idempotent) and a learner creation are tried once
    for call in (lambda: client.datasets.upload(b"abc", organization_id="o"),
                 lambda: client.learners.create(display_name="x", organization_id="o")):
        token.calls = 0
        with pytest.raises(errors.Unavailable):
            call()
        assert token.calls == 1
    # a list retries each page like a Get
    token.calls = 0
    with pytest.raises(errors.Unavailable):
        list(client.models.list())
    assert token.calls == 3
    client.close()


async def test_the_asyncio_client_retries_the_same_way():
    calls = []

    async def token():
        calls.append(1)
        return "token"

    async with mlmesh.aio.Client(f"127.0.0.1:{_closed_port()}", token=token, retry=FAST) as client:
        with pytest.raises(errors.Unavailable):
            await client.translations.get("t-1")
        assert len(calls) == 3
        calls.clear()
        with pytest.raises(errors.Unavailable):
            await client.jobs.cancel("j-1")
        assert len(calls) == 1


def _status_trailer() -> tuple:
    info = error_details_pb2.ErrorInfo(reason="DATASET_NOT_FOUND", domain="registry.mlmesh", metadata={"k": "v"})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="dataset d-1 does not exist",
                               details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()), ("x-request-id", "rid-42"))


@pytest.fixture
def slow_or_failing_server():
    """A real grpc server: GetDataset fails with a google.rpc.Status; GetModel answers after 5 s."""
    release = threading.Event()

    def get_dataset(request, context):
        context.abort_with_status(_Status(_status_trailer()))

    def get_model(request, context):
        release.wait(5)
        return b""

    handlers = {"GetDataset": grpc.unary_unary_rpc_method_handler(get_dataset),
                "GetModel": grpc.unary_unary_rpc_method_handler(get_model)}
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("mlmesh.registry.v1.RegistryService",
                                                                          handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    release.set()
    server.stop(0)


class _Status(grpc.Status):
    def __init__(self, trailing):
        self.code = grpc.StatusCode.NOT_FOUND
        self.details = "dataset d-1 does not exist"
        self.trailing_metadata = trailing


def test_a_status_becomes_an_error_with_reason_and_request_id(slow_or_failing_server):
    with mlmesh.Client(slow_or_failing_server, token="t", retry=FAST) as client:
        with pytest.raises(errors.NotFound) as info:
            client.datasets.get("d-1")
    exc = info.value
    assert isinstance(exc, mlmesh.MlmeshError)
    assert (exc.code, exc.message, exc.reason, exc.domain, exc.metadata, exc.request_id) == (
        grpc.StatusCode.NOT_FOUND, "dataset d-1 does not exist", "DATASET_NOT_FOUND", "registry.mlmesh", {"k": "v"},
        "rid-42")
    assert str(exc) == "NOT_FOUND: dataset d-1 does not exist (DATASET_NOT_FOUND, request id rid-42)"


def test_every_call_has_a_deadline(slow_or_failing_server):
    # the server holds GetModel for 5 s; the client's unary deadline is 0.3 s (not retried: not UNAVAILABLE)
    with mlmesh.Client(slow_or_failing_server, token="t", timeouts=mlmesh.Timeouts(unary=0.3)) as client:
        with pytest.raises(errors.DeadlineExceeded):
            client.models.get("m-1")
        with pytest.raises(errors.DeadlineExceeded):
            client.models.get("m-1", timeout=0.1)


async def test_the_asyncio_client_carries_the_same_error(slow_or_failing_server):
    async with mlmesh.aio.Client(slow_or_failing_server, token="t") as client:
        with pytest.raises(errors.NotFound) as info:
            await client.datasets.get("d-1")
        assert (info.value.reason, info.value.request_id) == ("DATASET_NOT_FOUND", "rid-42")
        with pytest.raises(errors.DeadlineExceeded):
            await asyncio.wait_for(client.models.get("m-1", timeout=0.2), 3)
