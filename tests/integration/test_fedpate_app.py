"""The FedPATE Flower app run by its launcher alone (no mlmesh server), on Flower 1.42's real
deployment engine in .venv-flower: 4 teachers hosted by 2 SuperNodes (`teachers-per-node` 2) vote
with Gaussian noise; each node commits to all its teachers' rows, every teacher's vote counts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.federation import blobs_csv

REPO = Path(__file__).resolve().parents[2]
FLOWER_PYTHON = REPO / ".venv-flower" / "bin" / "python"
APP = REPO / "servers" / "federation" / "apps"


def node_commitments(csv: Path, teachers: int, nodes: int, server_fraction: float, seed: int) -> list[list]:
    """Each node's (SHA-256, samples) recomputed by the app's own partitioning code: the union of
    the shards of the teachers it hosts."""
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import numpy as np; from fedpate import task\n"
              "t = task.read_table(sys.argv[2], 'target')\n"
              "n, parts, frac, seed = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])\n"
              "_p, private = task.split(len(t.labels), frac, seed)\n"
              "shards = task.partition(private, t.labels, n, 'iid', 0.0, seed)\n"
              "print(json.dumps([task.commitment(t, np.sort(np.concatenate([shards[i] for i in "
              "task.teachers_of(p, parts, n)]))) for p in range(parts)]))\n")
    out = subprocess.run([str(FLOWER_PYTHON), "-c", script, str(APP / "fedpate"), str(csv), str(teachers), str(nodes),
                          str(server_fraction), str(seed)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_teachers_per_node_vote_and_commit_per_node(tmp_path) -> None:
    if not FLOWER_PYTHON.exists():
        pytest.fail(f"{FLOWER_PYTHON} is missing: run `make flower-venv` (part of `make test`)", pytrace=False)
    csv = tmp_path / "data.csv"
    csv.write_bytes(blobs_csv())
    config = {"framework": "fedpate", "data-path": str(csv), "output-dir": str(tmp_path / "output"),
              "target-column": "target", "partition": "iid", "dirichlet-alpha": 0.0, "server-fraction": 0.3,
              "seed": 4, "net-name": "mlp", "num-server-rounds": 1, "num-teachers": 4, "teachers-per-node": 2,
              "teacher-epochs": 10, "student-epochs": 30, "batch-size": 16, "learning-rate": 0.01,
              "noise": "gaussian", "epsilon": 0.0, "sigma": 0.5, "num-queries": 60, "noise-data": 40}
    (tmp_path / "job.json").write_text(json.dumps(config))
    (tmp_path / "home").mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home")}
    # Execute
    out = subprocess.run([str(FLOWER_PYTHON), str(APP / "launch_flower.py"), str(tmp_path / "job.json")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, start_new_session=True)
    # Assert: two SuperNodes for four teachers, one commitment per node, a useful student
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 SuperNode(s) hosting 4 teacher(s)" in out.stdout
    events = [json.loads(line.removeprefix("MLMESH_EVENT ")) for line in out.stdout.splitlines()
              if line.startswith("MLMESH_EVENT ")]
    commitments = sorted([e["sha256"], e["sample_count"]] for e in events if e["type"] == "commitment")
    assert sorted(e["client_id"] for e in events if e["type"] == "commitment") == ["client-0", "client-1"]
    assert commitments == sorted(node_commitments(csv, 4, 2, 0.3, 4))
    assert sum(n for _h, n in commitments) == 240 - 72
    (round_event,) = [e for e in events if e["type"] == "round"]
    assert round_event["queries"] == 40 and round_event["accuracy"] >= 0.8, round_event
    assert (tmp_path / "output" / "model.pt").is_file()
