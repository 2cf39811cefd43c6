"""Property-based tests of every RPC of every server: random well-formed and hostile requests,
in the RPC's own streaming shape, sent to the server directly and through Envoy (native gRPC with
a token), on the stack `make up` starts (tests/fixtures/mesh.py; the Learner runs there in
.venv-ml, as in production).

The RPCs come from the descriptor set (tests/fuzz/descriptors.py): a new server is fuzzed as soon
as it has its row in Envoy's route table (which tests/unit/test_envoy_config.py requires of every
service). A call fails the test when it ends in UNKNOWN, INTERNAL, DEADLINE_EXCEEDED (a hang past
the deadline) or UNAVAILABLE (a broken stream: a reset, Envoy's "upstream connect error"), or when
the server's health check fails after it (a dead server). Every other status — INVALID_ARGUMENT,
NOT_FOUND, PERMISSION_DENIED, UNIMPLEMENTED for what Envoy does not route, ... — is an answer.

Shapes: unary; client streams of 0 to 4 messages, some cut short by a cancel; server streams read
to the end or cancelled after the first response; bidirectional streams, both. Now and then a
stream message is random bytes rather than a message.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from servers.common.internal import internal_callers
from servers.devstack.envoy.routes import MESH_ROUTES, Exposure
from tests.fuzz.descriptors import Rpc, message_class, rpcs
from tests.fuzz.strategies import FUZZ_ORG, messages, wire

DEADLINE = 20.0
BROKEN = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED,
          grpc.StatusCode.UNAVAILABLE)
_UPSTREAM = {r.service: r.upstream for r in MESH_ROUTES if r.upstream is not None}
# The statuses each (RPC, path) answered, for the coverage check at the end of the module.
_SEEN: dict[tuple[str, str], set[str]] = defaultdict(set)


def _fuzzed() -> list[Rpc]:
    return [rpc for rpc in rpcs() if rpc.service in _UPSTREAM]


class _Channels:
    """One channel per (server, certificate) and one to Envoy, for the whole module."""

    def __init__(self, stack):
        self.stack = stack
        self._lock = threading.Lock()
        self._direct: dict[tuple[str, str], grpc.Channel] = {}
        self.envoy = grpc.insecure_channel(stack.envoy)
        self.token = stack.token(FUZZ_ORG)

    def direct(self, upstream: str, component: str) -> grpc.Channel:
        with self._lock:
            key = (upstream, component)
            if key not in self._direct:
                self._direct[key] = grpc.secure_channel(self.stack.server_target(upstream),
                                                        self.stack.client_credentials(component))
            return self._direct[key]

    def close(self) -> None:
        self.envoy.close()
        for channel in self._direct.values():
            channel.close()


@pytest.fixture(scope="module")
def channels(stack):
    chans = _Channels(stack)
    yield chans
    chans.close()


def _route(rpc: Rpc, channels: _Channels, path: str) -> tuple[grpc.Channel, tuple]:
    upstream = _UPSTREAM[rpc.service]
    if path == "envoy":
        return channels.envoy, (("authorization", f"Bearer {channels.token}"),)
    callers = internal_callers(rpc.path)
    if callers is not None:  # an internal RPC: called as the mesh server that may call it
        return channels.direct(upstream, sorted(callers)[0]), ()
    return channels.direct(upstream, "client"), (("x-mlmesh-org", FUZZ_ORG),)


def _call_strategy(rpc: Rpc):
    cls = message_class(rpc.input_type)
    if rpc.client_streaming:
        stream = st.lists(st.one_of(messages(cls).map(lambda m: m.SerializeToString()), wire(cls)), max_size=4)
        return st.tuples(stream, st.booleans())
    return st.tuples(messages(cls).map(lambda m: m.SerializeToString()), st.booleans())


def _identity(raw: bytes) -> bytes:
    return raw


def _invoke(channel: grpc.Channel, rpc: Rpc, metadata: tuple, request, stop_early: bool) -> grpc.StatusCode:
    """Sends one call; returns its final status code."""
    kwargs = dict(request_serializer=_identity, response_deserializer=_identity)
    try:
        if not rpc.client_streaming and not rpc.server_streaming:
            channel.unary_unary(rpc.path, **kwargs)(request, timeout=DEADLINE, metadata=metadata)
            return grpc.StatusCode.OK
        if rpc.client_streaming and not rpc.server_streaming:
            future = channel.stream_unary(rpc.path, **kwargs).future(iter(request), timeout=DEADLINE,
                                                                      metadata=metadata)
            if stop_early:
                future.cancel()
            future.result()
            return grpc.StatusCode.OK
        if rpc.server_streaming and not rpc.client_streaming:
            call = channel.unary_stream(rpc.path, **kwargs)(request, timeout=DEADLINE, metadata=metadata)
        else:
            call = channel.stream_stream(rpc.path, **kwargs)(iter(request), timeout=DEADLINE, metadata=metadata)
        for count, _ in enumerate(call, 1):
            if stop_early or count >= 50:
                call.cancel()
                break
        return call.code() or grpc.StatusCode.OK
    except grpc.FutureCancelledError:
        return grpc.StatusCode.CANCELLED
    except grpc.RpcError as err:
        code = err.code()
        if code in BROKEN:
            raise AssertionError(f"{rpc} ended {code.name}: {err.details()!r}") from None
        return code


def _healthy(channels: _Channels, rpc: Rpc) -> None:
    upstream = _UPSTREAM[rpc.service]
    stub = health_pb2_grpc.HealthStub(channels.direct(upstream, "client"))
    try:
        answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
    except grpc.RpcError as err:
        raise AssertionError(f"after {rpc}, the {upstream} server is dead: {err.code().name} {err.details()}") \
            from None
    assert answer.status == health_pb2.HealthCheckResponse.SERVING, f"after {rpc}, {upstream} is not serving"


@pytest.mark.parametrize("path", ["direct", "envoy"])
@pytest.mark.parametrize("rpc", _fuzzed(), ids=str)
def test_every_rpc_answers_hostile_and_random_requests(channels, rpc: Rpc, path: str):
    # RPCs Envoy does not route are sent through it too: it must answer, never break the stream.
    channel, metadata = _route(rpc, channels, path)

    @given(call=_call_strategy(rpc))
    def one_call(call):
        request, stop_early = call
        code = _invoke(channel, rpc, metadata, request, stop_early)
        _SEEN[(rpc.path, path)].add(code.name)
        _healthy(channels, rpc)

    one_call()


def test_the_requests_reached_the_servers():
    """Runs after the fuzzing above (file order): the hostile requests were refused by the servers
    themselves (INVALID_ARGUMENT), not only by the transport; Envoy refused the internal ones."""
    fuzzed = _fuzzed()
    if len(_SEEN) < 2 * len(fuzzed):
        pytest.skip("run with the whole module: it checks what the fuzzing above saw")
    direct_invalid = [rpc for rpc in fuzzed if "INVALID_ARGUMENT" in _SEEN[(rpc.path, "direct")]]
    assert len(direct_invalid) >= 0.8 * len(fuzzed), sorted(str(r) for r in fuzzed if r not in direct_invalid)
    for rpc in fuzzed:
        routed = next(r for r in MESH_ROUTES if r.service == rpc.service).exposure is not Exposure.INTERNAL
        if not routed:
            assert _SEEN[(rpc.path, "envoy")] <= {"UNIMPLEMENTED", "CANCELLED"}, (str(rpc), _SEEN[(rpc.path, "envoy")])


def test_the_suite_covers_every_shape_and_server():
    fuzzed = _fuzzed()
    assert {rpc.shape for rpc in fuzzed} == {"unary", "client-stream", "server-stream", "bidi"}
    assert {_UPSTREAM[rpc.service] for rpc in fuzzed} >= {"registry", "ledger", "trainer", "translator", "learner"}
