"""The mesh from its images (`make images`) with podman on 127.0.0.1, and `make demo`'s walk-through
(`mlmesh demo`, run on the host exactly as a user runs it) against it through the containerised Envoy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_every_container_runs_as_the_non_root_user(podman_stack):
    from tests.deploy.images.conftest import podman

    for container in podman_stack.containers:
        user = podman("exec", container, "id", "-u").stdout.strip()
        assert user == "10001", f"{container} runs as {user}"


def test_the_front_door_routes_as_make_up_does(podman_stack):
    """REST, the Registry's multipart and contract fronts and the Learner's OIP REST half through the
    containerised Envoy (its config has make up's HTTP routes)."""
    from tests.deploy.images.conftest import check_front_door

    check_front_door(f"http://127.0.0.1:{podman_stack.envoy_port}", podman_stack.keys, "org-podman-front")


def test_the_demo_passes_against_the_containers(podman_stack):
    result = subprocess.run([str(REPO / ".venv/bin/mlmesh"), "demo"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, **podman_stack.env, "COLUMNS": "200"}, timeout=900)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    assert "verified: bytes, database and ledger agree" in out
    assert out.count("the ledger alone proves which dataset and which recipe made these bytes") == 3
    assert "pytorch" in out and "sklearn" in out and "onnxruntime" in out


def test_sigterm_stops_every_container_cleanly(podman_stack):  # last in the file: it stops the stack
    """`podman stop` sends SIGTERM through --init's catatonit; each server drains and exits 0 before
    podman would escalate to SIGKILL (exit 137)."""
    codes = podman_stack.stop_all()
    assert codes and all(code in (0, 143) for code in codes.values()), codes
    servers = {name: code for name, code in codes.items() if "postgres" not in name and "chain" not in name
               and "envoy" not in name}
    assert all(code == 0 for code in servers.values()), servers
