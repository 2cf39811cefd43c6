"""`make demo`'s walk-through as a test: `mlmesh demo` against the stack, exactly as a user runs it
after `make up` (its exit status is 0 only if every proof and parity check in it holds).

Marked `runs_last`: it runs after every other test, on the stack they have stopped, killed and
restarted (tests/e2e/conftest.py says why)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.runs_last
def test_mlmesh_demo_runs_the_whole_walkthrough(stack):
    result = subprocess.run([str(REPO / ".venv/bin/mlmesh"), "demo"], cwd=REPO, env={**os.environ, **stack.env,
                            "COLUMNS": "200"}, capture_output=True, text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
    assert "verified: bytes, database and ledger agree" in out
    assert out.count("the ledger alone proves which dataset and which recipe made these bytes") == 3
    assert out.count("(= ledger)") == 2
    assert "pytorch" in out and "sklearn" in out and "onnxruntime" in out
    assert "HTTP 401" in out
    # Sharing: a second organization trains on the shared dataset; a stranger gets 404.
    assert "sees that grid-analytics-ll trained a model on its dataset" in out
    assert "shared on purpose, used, revoked, and a stranger saw nothing" in out
    assert "expected HTTP" not in out
