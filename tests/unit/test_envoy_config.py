"""The route table's promises, checked on the rendered Envoy config (no Envoy started):
internal services and internal RPCs get no route, only health goes without a token, every
service with a REST binding in the descriptor set is routed and transcoded, and every
upstream the table names is a server the devstack starts."""

from __future__ import annotations

from typing import Any

import pytest

from servers.common.endpoints import PORTS
from servers.devstack.envoy import routes
from servers.devstack.envoy.descriptors import DEFAULT_DESCRIPTOR, read_services
from servers.devstack.envoy.render import render_envoy_config
from servers.devstack.envoy.routes import MESH_ROUTES, Exposure, ServiceRoute
from servers.devstack.mesh import SERVERS

UPSTREAMS = {name: ("127.0.0.1", PORTS[name].grpc) for name in routes.upstreams_of(MESH_ROUTES)}


@pytest.fixture(scope="module")
def descriptor_services():
    if not DEFAULT_DESCRIPTOR.exists():
        pytest.fail("no descriptor set (gen/descriptors/mlmesh.binpb): run `make gen`", pytrace=False)
    return read_services(DEFAULT_DESCRIPTOR)


@pytest.fixture(scope="module")
def hcm(descriptor_services) -> dict[str, Any]:
    config = render_envoy_config(upstreams=UPSTREAMS, routes=MESH_ROUTES, jwks={"keys": []})
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _routes(hcm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """path or prefix -> route action."""
    table = hcm["route_config"]["virtual_hosts"][0]["routes"]
    return {r["match"].get("path") or r["match"]["prefix"]: r["route"] for r in table}


def _filter(hcm: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f["typed_config"] for f in hcm["http_filters"] if f["name"] == name)


def test_internal_services_have_no_route(hcm):
    internal = [row.prefix for row in MESH_ROUTES if row.exposure is Exposure.INTERNAL]
    assert "/mlmesh.ledger.v1.LedgerService/" in internal
    for match in _routes(hcm):
        assert not any(match.startswith(prefix) for prefix in internal), match


def test_rpcs_without_a_rest_binding_have_no_route(hcm, descriptor_services):
    matches = _routes(hcm)
    hidden = [m.path for row in MESH_ROUTES if row.exposure is Exposure.REST
              for m in descriptor_services[row.service] if not m.public]
    assert "/mlmesh.registry.v1.RegistryService/ReportTrainingStatus" in hidden
    assert not set(hidden) & set(matches)


def test_only_health_needs_no_token(hcm):
    rules = _filter(hcm, "envoy.filters.http.jwt_authn")["rules"]
    assert rules[-1] == {"match": {"prefix": "/"}, "requires": {"provider_name": "mlmesh"}}
    assert [r["match"]["prefix"] for r in rules if "requires" not in r] == ["/grpc.health.v1.Health/"]
    health = _routes(hcm)
    assert health["/grpc.health.v1.Health/Check"]["timeout"] == "10s"
    assert health["/grpc.health.v1.Health/Watch"]["timeout"] == "0s"


def test_every_public_service_is_routed_and_transcoded(hcm, descriptor_services):
    rows = {row.service: row for row in MESH_ROUTES}
    matches = _routes(hcm)
    public = [name for name, methods in descriptor_services.items() if any(m.public for m in methods)]
    assert public, "the descriptor set has no REST bindings"
    for service in public:
        row = rows.get(service)
        assert row is not None and row.exposure is Exposure.REST, f"{service} needs a REST row in MESH_ROUTES"
        for m in descriptor_services[service]:
            if m.public:
                route = matches[m.path]
                assert route["cluster"] == f"upstream_{row.upstream}"
                assert (route["timeout"] == "0s") == m.streaming, m.path
    transcoded = _filter(hcm, "envoy.filters.http.grpc_json_transcoder")["services"]
    assert transcoded == [row.service for row in MESH_ROUTES if row.exposure is Exposure.REST]


def test_every_service_in_the_descriptor_set_has_a_row(descriptor_services):
    """A new service must say how the front door treats it (REST, NATIVE or INTERNAL)."""
    assert set(descriptor_services) <= {row.service for row in MESH_ROUTES}


def test_native_services_are_routed_whole_without_transcoding(hcm):
    matches = _routes(hcm)
    assert matches["/inference.GRPCInferenceService/"] == {"cluster": "upstream_learner", "timeout": "60s"}
    assert matches["/grpc.reflection.v1.ServerReflection/"]["timeout"] == "0s"


def test_every_upstream_is_a_devstack_server():
    servers = {server.name for server in SERVERS}
    assert set(routes.upstreams_of(MESH_ROUTES)) <= servers
    assert {row.upstream for row in MESH_ROUTES if row.upstream} <= servers <= set(PORTS)


def test_select_keeps_the_front_door_rows_and_refuses_unknown_services():
    chosen = routes.select(["mlmesh.trainer.v1.TrainerService"])
    assert [row.service for row in chosen] == [
        *(row.service for row in routes.FRONT_DOOR), "mlmesh.trainer.v1.TrainerService"]
    with pytest.raises(ValueError, match="not in the route table"):
        routes.select(["mlmesh.nothing.v1.Nothing"])


def test_a_service_routed_to_an_unknown_upstream_is_refused(descriptor_services):
    table = routes.select(["mlmesh.trainer.v1.TrainerService"])
    with pytest.raises(ValueError, match="no upstream 'trainer'"):
        render_envoy_config(upstreams={"registry": ("127.0.0.1", 1)}, routes=table, jwks={"keys": []})


@pytest.mark.parametrize("kwargs", [{"exposure": Exposure.REST, "timeout": 0.0},
                                    {"exposure": Exposure.INTERNAL, "jwt": False}])
def test_rows_that_make_no_sense_are_refused(kwargs):
    with pytest.raises(ValueError):
        ServiceRoute("x.v1.X", "x", **kwargs)
