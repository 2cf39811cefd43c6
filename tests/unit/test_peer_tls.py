"""Every server's peer clients dial with the server's own TLS settings (`settings.tls`, which
includes MLMESH_<NAME>_TLS__*), not only the mesh-wide MLMESH_TLS_* that PeerClient falls back to.
tests/integration/test_mtls_peers.py shows it on real servers for the Registry and the Trainer;
this checks every main.py wires it, so a client added later cannot forget it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVERS = Path(__file__).resolve().parents[2] / "servers"
MAINS = ["registry", "trainer", "translator", "learner", "optimizer", "federation"]


def _client_calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id.endswith("Client")]


@pytest.mark.parametrize("name", MAINS)
def test_every_peer_client_gets_the_servers_tls_settings(name):
    calls = _client_calls(ast.parse((SERVERS / name / "main.py").read_text()))
    assert calls, f"servers/{name}/main.py builds no peer client"
    for call in calls:
        tls = [kw.value for kw in call.keywords if kw.arg == "tls"]
        assert tls and ast.unparse(tls[0]) == "settings.tls", \
            f"servers/{name}/main.py line {call.lineno}: {call.func.id}(...) without tls=settings.tls"
