"""Property-based tests of the front door's REST side, through Envoy with a token: every route the
gRPC-JSON transcoder serves (each RPC's `google.api.http` binding and its additional bindings, read
from the generated descriptors, so a new binding is fuzzed without touching this file) and every
HTTP front route (routes.HTTP_ROUTES: the Registry's multipart forms and contract read, the Learner's
Open Inference Protocol REST half). Path variables, query parameters (the request message's field
names and stray ones) and bodies (JSON of every kind, the protocol's tensors, multipart, raw bytes)
are random and hostile.

A request fails the test when its answer is a 5xx other than 501 (the transcoder's answer for an RPC
the server leaves UNIMPLEMENTED, such as the Federation's FLARE RPCs) and 503 without Envoy's
upstream failure text (a server's own UNAVAILABLE, e.g. a dependency it cannot reach; none was seen
in the runs so far); when it hangs past the deadline; or when a server stops answering its health
check afterwards. Every 4xx is an answer.
"""

from __future__ import annotations

from http import client as http_client
import json
import re
import urllib.parse
from collections import defaultdict

import grpc
import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from servers.devstack.envoy.routes import HTTP_ROUTES, MESH_ROUTES
from tests.fuzz.descriptors import message_class, rpcs
from tests.fuzz.strategies import FUZZ_ORG, strings

DEADLINE = 20.0
_UPSTREAM = {r.service: r.upstream for r in MESH_ROUTES if r.upstream is not None}
_VARIABLE = re.compile(r"\{([^}=]+)(=[^}]*)?\}")
_SEEN: dict[str, set[int]] = defaultdict(set)


def _bindings():
    """(label, HTTP method, path template, request message class, body selector) of every binding."""
    out = []
    pool = descriptor_pool.Default()
    for rpc in rpcs():
        if rpc.service not in _UPSTREAM:
            continue
        options = pool.FindMethodByName(f"{rpc.service}.{rpc.name}").GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule = options.Extensions[annotations_pb2.http]
        for r in (rule, *rule.additional_bindings):
            kind = r.WhichOneof("pattern")
            if kind is None:
                continue
            method, template = (r.custom.kind, r.custom.path) if kind == "custom" else (kind.upper(), getattr(r, kind))
            out.append((f"{rpc} {method} {template}", method, template, message_class(rpc.input_type), r.body))
    return out


BINDINGS = _bindings()


def _front_routes():
    """(label, method, example path) of each HTTP front route, a path variable marked {v}."""
    examples = {"/dataset": "/dataset", "/model/?": "/model/", "/contract/[^/]+": "/contract/{v}",
                "/v2/health/(live|ready)": "/v2/health/ready", "/v2": "/v2", "/v2/models/": "/v2/models/{v}/infer"}
    out = []
    for route in HTTP_ROUTES:
        pattern = route.path or route.prefix or route.regex
        for method in route.methods:
            out.append((f"{route.server} {method} {pattern}", method, examples[pattern], route.content_type))
    return out


FRONT_ROUTES = _front_routes()


@pytest.fixture(scope="module")
def http(stack):
    with httpx.Client(base_url=stack.base_url, timeout=DEADLINE,
                      headers={"authorization": f"Bearer {stack.token(FUZZ_ORG)}"}) as client:
        yield client


def _fill(template: str, values: list[str]) -> str:
    it = iter(values)
    # a 70,000-character segment is cut to 2,000 (httpx builds no longer URL; the long value's own test is below)
    return _VARIABLE.sub(lambda _: urllib.parse.quote(next(it, "x")[:2000], safe=""), template)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), strings),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)),
    max_leaves=12,
)
tensors = st.fixed_dictionaries({
    "name": strings, "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "x" * 300, "\x00"]),
    "shape": st.lists(st.integers(min_value=-(2 ** 70), max_value=2 ** 70), max_size=6),
    "data": st.one_of(st.lists(st.floats(), max_size=8), json_values),
})
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda t, i: json.dumps({"id": i, "inputs": [t]}).encode(), tensors, strings),
    st.sampled_from([b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [NaN]}]}',
                     b"[" * 5000 + b"]" * 5000, b"{", b"\xff\xfe", b""]),
    st.binary(max_size=256),
)


def _answered(response: httpx.Response, label: str) -> None:
    _SEEN[label].add(response.status_code)
    status = response.status_code
    if status in (501,) or status < 500:
        return
    if status == 503 and "upstream connect error" not in response.text and "no healthy upstream" not in response.text:
        return
    raise AssertionError(f"{label}: {status} {response.text[:300]!r}")


def _send(http: httpx.Client, label: str, method: str, path: str, **kwargs) -> None:
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise AssertionError(f"{label}: no answer within {DEADLINE} s") from None
    _answered(response, label)


@pytest.mark.parametrize("binding", BINDINGS, ids=[b[0] for b in BINDINGS])
@given(data=st.data())
def test_every_transcoded_route_answers_hostile_requests(http, binding, data):
    label, method, template, cls, body_selector = binding
    names = [f.name for f in cls.DESCRIPTOR.fields] + ["\x00", "unknown_param", "page_size"]
    path = _fill(template, data.draw(st.lists(strings, min_size=3, max_size=3)))
    params = data.draw(st.lists(st.tuples(st.sampled_from(names), st.one_of(strings, st.integers().map(str))),
                                max_size=4))
    params = [(k, v) for k, v in params if len(k) + len(v) < 8000]  # 70,000 characters: its own test below
    kwargs: dict = {"params": params}
    if method not in ("GET", "DELETE"):
        kwargs["content"] = data.draw(bodies) if body_selector else b""
        kwargs["headers"] = {"content-type": data.draw(st.sampled_from(["application/json", "text/csv"]))}
    _send(http, label, method, path, **kwargs)


@pytest.mark.parametrize("route", FRONT_ROUTES, ids=[r[0] for r in FRONT_ROUTES])
@given(data=st.data())
def test_every_http_front_route_answers_hostile_requests(http, route, data):
    label, method, example, content_type = route
    path = _fill(example, [data.draw(strings)])
    params = data.draw(st.lists(st.tuples(strings, strings), max_size=3))
    kwargs: dict = {"params": [(k, v) for k, v in params if len(k) + len(v) < 8000]}
    if method == "POST":
        if content_type.startswith("multipart"):
            kind = data.draw(st.sampled_from(["form", "no-boundary", "raw"]))
            if kind == "form":
                files = {"dataset" if "dataset" in example else "recipe": ("f.bin", data.draw(st.binary(max_size=64)))}
                form = {"metadata": data.draw(bodies).decode("latin-1")}
                if data.draw(st.booleans()):
                    form["train_image"] = data.draw(strings)
                kwargs.update(files=files, data=form)
            else:
                boundary = "" if kind == "no-boundary" else "; boundary=zzz"
                kwargs.update(content=data.draw(bodies), headers={"content-type": f"multipart/form-data{boundary}"})
        else:
            kwargs.update(content=data.draw(bodies), headers={"content-type": "application/json"})
    _send(http, label, method, path, **kwargs)


@pytest.mark.parametrize("where", ["transcoded", "http-front"])
def test_a_70000_character_query_value_is_a_clean_4xx(stack, where):
    """Envoy refuses a request line past its header limit (60 KiB by default) with 431 before any
    server sees it; it must stay that and never become a reset or a 5xx. (httpx refuses to build a
    URL this long, so the request goes out through http.client.)"""
    path = "/v1/datasets" if where == "transcoded" else "/v2/models/x/ready"
    host, port = urllib.parse.urlsplit(stack.base_url).hostname, urllib.parse.urlsplit(stack.base_url).port
    connection = http_client.HTTPConnection(host, port, timeout=DEADLINE)
    try:
        connection.request("GET", f"{path}?organization_id={'x' * 70_000}",
                           headers={"authorization": f"Bearer {stack.token(FUZZ_ORG)}"})
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert status == 431, (status, body[:200])


def test_the_servers_are_alive_after_the_rest_fuzzing(stack):
    for upstream in sorted(set(_UPSTREAM.values())):
        with grpc.secure_channel(stack.server_target(upstream), stack.client_credentials("client")) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, upstream


def test_the_rest_suite_covers_every_binding_and_front_route():
    assert len(BINDINGS) > 40 and len(FRONT_ROUTES) >= 6
    assert any("ModelInfer" in b[0] or "/v1/" in b[2] for b in BINDINGS)
