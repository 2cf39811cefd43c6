"""The front door gives the Optimizer's in-call worker RPCs (OptimizeDay, EvaluateAgent) their own
route and idle timeouts; its other unary RPCs keep the unary default (rendered from the committed
descriptor set, as make up and k8s/generate.py render it)."""

from pathlib import Path

from servers.devstack.envoy import render
from servers.devstack.envoy.routes import MESH_ROUTES

DESCRIPTORS = Path(__file__).resolve().parents[2] / "gen" / "descriptors" / "mlmesh.binpb"


def test_slow_optimizer_rpcs_get_their_own_timeouts():
    upstreams = {row.upstream: ("127.0.0.1", 1) for row in MESH_ROUTES if row.upstream}
    routes = render._routes(MESH_ROUTES, DESCRIPTORS, upstreams, "registry", 60.0)
    by_path = {r["match"].get("path"): r["route"] for r in routes}
    service = "/mlmesh.optimizer.v1.OptimizerService/"
    assert by_path[service + "OptimizeDay"] == {"cluster": "upstream_optimizer", "timeout": "600s",
                                                "idle_timeout": "600s"}
    assert by_path[service + "EvaluateAgent"]["timeout"] == by_path[service + "EvaluateAgent"]["idle_timeout"] \
        == "1800s"
    assert by_path[service + "GetAgent"] == {"cluster": "upstream_optimizer", "timeout": "60s"}
    assert by_path[service + "WatchAgent"]["timeout"] == "0s"
