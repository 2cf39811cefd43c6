"""The FedPATE Flower app run by its launcher alone (no mlmesh server), on Flower 1.42's real
deployment engine in .venv-flower: 4 teachers hosted by 2 SuperNodes (`teachers-per-node` 2) vote
with Gaussian noise; each node commits to all its teachers' rows, every teacher's vote counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.federation import blobs_csv, cifar_archive

REPO = Path(__file__).resolve().parents[2]
FLOWER_PYTHON = REPO / ".venv-flower" / "bin" / "python"
APP = REPO / "servers" / "federation" / "apps"


def run_launcher(tmp_path: Path, config: dict) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """The launcher on `config` as its job.json in `tmp_path`; (the finished process, its events)."""
    if not FLOWER_PYTHON.exists():
        pytest.fail(f"{FLOWER_PYTHON} is missing: run `make flower-venv` (part of `make test`)", pytrace=False)
    (tmp_path / "job.json").write_text(json.dumps(config))
    (tmp_path / "home").mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home")}
    out = subprocess.run([str(FLOWER_PYTHON), str(APP / "launch_flower.py"), str(tmp_path / "job.json")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, start_new_session=True)
    return out, events_of(out.stdout)


def events_of(stdout: str) -> list[dict]:
    """The launcher's MLMESH_EVENT lines, parsed."""
    return [json.loads(line.removeprefix("MLMESH_EVENT ")) for line in stdout.splitlines()
            if line.startswith("MLMESH_EVENT ")]


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
    csv = tmp_path / "data.csv"
    csv.write_bytes(blobs_csv())
    config = {"framework": "fedpate", "data-path": str(csv), "output-dir": str(tmp_path / "output"),
              "target-column": "target", "partition": "iid", "dirichlet-alpha": 0.0, "server-fraction": 0.3,
              "seed": 4, "net-name": "mlp", "num-server-rounds": 1, "num-teachers": 4, "teachers-per-node": 2,
              "teacher-epochs": 10, "student-epochs": 30, "batch-size": 16, "learning-rate": 0.01,
              "noise": "gaussian", "epsilon": 0.0, "sigma": 0.5, "num-queries": 60, "noise-data": 40}
    # Execute
    out, events = run_launcher(tmp_path, config)
    # Assert: two SuperNodes for four teachers, one commitment per node, a useful student
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 SuperNode(s) hosting 4 teacher(s)" in out.stdout
    commitments = sorted([e["sha256"], e["sample_count"]] for e in events if e["type"] == "commitment")
    assert sorted(e["client_id"] for e in events if e["type"] == "commitment") == ["client-0", "client-1"]
    assert commitments == sorted(node_commitments(csv, 4, 2, 0.3, 4))
    assert sum(n for _h, n in commitments) == 240 - 72
    (round_event,) = [e for e in events if e["type"] == "round"]
    assert round_event["queries"] == 40 and round_event["accuracy"] >= 0.8, round_event
    assert (tmp_path / "output" / "model.pt").is_file()


def test_confident_gnmax_on_representative_queries_with_label_spreading(tmp_path) -> None:
    """The options the benchmark's private student uses, on the real engine: k-means-chosen queries,
    Confident-GNMax (a noisy threshold before GNMax), the answered labels spread over the public
    rows outside the test set; the vote histograms the accountant needs in votes.json."""
    from servers.federation.domain import privacy

    csv = tmp_path / "data.csv"
    csv.write_bytes(blobs_csv())
    config = {"framework": "fedpate", "data-path": str(csv), "output-dir": str(tmp_path / "output"),
              "target-column": "target", "partition": "iid", "dirichlet-alpha": 0.0, "server-fraction": 0.5,
              "seed": 3, "net-name": "mlp", "num-server-rounds": 1, "num-teachers": 4, "teachers-per-node": 2,
              "teacher-epochs": 10, "student-epochs": 30, "batch-size": 16, "learning-rate": 0.01,
              "noise": "gaussian", "epsilon": 0.0, "sigma": 0.5, "num-queries": 80, "noise-data": 20,
              "threshold": 4.0, "sigma-threshold": 0.5, "query-selection": "representative",
              "student-semi-supervised": "label-spreading"}
    # Execute
    out, events = run_launcher(tmp_path, config)
    # Assert: 20 queries asked, some answered (threshold 4 of 4 votes: a unanimous query passes
    # half the time, a 3-1 vote about 2 % of the time), the student trained on the 60 public rows
    # outside its 60 test rows (120 public rows), and useful
    assert out.returncode == 0, out.stderr[-3000:]
    (round_event,) = [e for e in events if e["type"] == "round"]
    assert round_event["queries"] == 20 and 1 <= round_event["answered"] < 20, round_event
    assert round_event["answered"] < round_event["student_rows"] <= 60, round_event
    assert round_event["accuracy"] >= 0.8, round_event
    votes = json.loads((tmp_path / "output" / "votes.json").read_text())
    assert len(votes["counts"]) == 20 and all(sum(row) == 4 for row in votes["counts"])
    assert sum(votes["answered"]) == round_event["answered"]
    assert all(max(row) >= 3 for row, used in zip(votes["counts"], votes["answered"], strict=True) if used)
    assert (votes["threshold"], votes["sigma_threshold"], votes["sigma"]) == (4.0, 0.5, 0.5)
    # The accountant reads it: a data-dependent figure and the data-independent one beside it
    report = privacy.fedpate_confident_gnmax(votes["counts"], votes["answered"], sigma=0.5, threshold=4.0,
                                             sigma_threshold=0.5)
    assert 0 < report.epsilon <= float(report.parameters["data_independent_epsilon"]) * (1 + 1e-6)
    # The histograms never reach the events (they are derived from the teachers' private data)
    assert "counts" not in json.dumps(events)


def test_unknown_student_options_fail_the_run_naming_them(tmp_path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_bytes(blobs_csv())
    config = {"framework": "fedpate", "data-path": str(csv), "output-dir": str(tmp_path / "output"),
              "target-column": "target", "partition": "iid", "dirichlet-alpha": 0.0, "server-fraction": 0.5,
              "seed": 3, "net-name": "mlp", "num-server-rounds": 1, "num-teachers": 2, "teacher-epochs": 1,
              "student-epochs": 1, "batch-size": 16, "learning-rate": 0.01, "noise": "laplacian", "epsilon": 1.0,
              "sigma": 0.0, "num-queries": 80, "noise-data": 20, "threshold": 3.0, "sigma-threshold": 0.5}
    # Execute: a threshold needs gaussian noise (Confident-GNMax)
    out, _events = run_launcher(tmp_path, config)
    # Assert
    assert out.returncode != 0
    assert "threshold (Confident-GNMax) needs gaussian noise" in out.stdout + out.stderr


def test_a_cifar10_python_archive_trains_the_seeds_cnn(tmp_path) -> None:
    archive = cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    config = {"framework": "fedpate", "data-path": str(archive), "output-dir": str(tmp_path / "output"),
              "target-column": "target", "partition": "iid", "dirichlet-alpha": 0.0, "server-fraction": 0.4,
              "seed": 1, "net-name": "auto", "num-server-rounds": 1, "num-teachers": 2, "teacher-epochs": 5,
              "student-epochs": 10, "batch-size": 16, "learning-rate": 0.001, "noise": "laplacian",
              "epsilon": 5.0, "sigma": 0.0, "num-queries": 48, "noise-data": 30}
    # Execute
    out, events = run_launcher(tmp_path, config)
    # Assert: the 120 images read from both batches, the seed's CNN chosen for 3x32x32, a student
    assert out.returncode == 0, out.stderr[-3000:]
    assert sum(e["sample_count"] for e in events if e["type"] == "commitment") == 120 - 48
    (round_event,) = [e for e in events if e["type"] == "round"]
    assert round_event["queries"] == 30 and round_event["accuracy"] > 0.5, round_event  # 3 classes: chance 1/3
    result = json.loads((tmp_path / "output" / "result.json").read_text())
    assert result["input_signature"]["shape"] == [-1, 3072] and result["input_signature"]["csv_feature_columns"] is None
    check = ("import sys, torch; m = torch.jit.load(sys.argv[1]); "
             "print(sorted({x.original_name for x in m.modules()}))")
    kinds = subprocess.run([str(FLOWER_PYTHON), "-c", check, str(tmp_path / "output" / "model.pt")], check=True,
                           capture_output=True, text=True).stdout
    assert "Conv2d" in kinds and "MaxPool2d" in kinds


def test_an_archive_whose_pickle_would_run_code_is_refused(tmp_path) -> None:
    """The archive's pickles are read with numpy arrays, lists and dicts only: a pickle that calls a
    function is refused before anything runs."""
    import io
    import pickle
    import tarfile

    marker = tmp_path / "ran"

    class Hostile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        blob = pickle.dumps({b"data": Hostile(), b"labels": [0]})
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(blob)
        archive.addfile(info, io.BytesIO(blob))
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from fedpate import task\n"
              "try:\n    task.read_table(sys.argv[2], 'target')\nexcept ValueError as e:\n    print('refused:', e)\n")
    out = subprocess.run([str(FLOWER_PYTHON), "-c", script, str(APP / "fedpate"), str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("refused:") and ("io.open" in out or "builtins.open" in out), out
    assert not marker.exists()


def test_real_mode_two_supernodes_join_the_superlink_over_tls(tmp_path) -> None:
    """Real mode on 127.0.0.1: the launcher starts only a SuperLink over TLS (its own CA, behind the
    site gate) and waits; two SuperNodes, separate processes started here the way a remote site
    would (`--root-certificates`, their own CSV in `--node-config`), join and train on their own data."""
    import signal
    import socket
    import ssl
    import time

    if not FLOWER_PYTHON.exists():
        pytest.fail(f"{FLOWER_PYTHON} is missing: run `make flower-venv` (part of `make test`)", pytrace=False)
    lines = blobs_csv(rows=360).decode().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    files = {}
    for name, part in (("server", rows[:120]), ("site-a", rows[120:240]), ("site-b", rows[240:])):
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text(header + "".join(part))
    job_dir = tmp_path / "job"
    (job_dir / "home").mkdir(parents=True)
    config = {"framework": "fedpate", "mode": "real", "data-path": str(files["server"]),
              "output-dir": str(job_dir / "output"), "target-column": "target", "partition": "iid",
              "dirichlet-alpha": 0.0, "server-fraction": 0.99, "seed": 2, "net-name": "mlp", "num-server-rounds": 1,
              "num-teachers": 2, "teacher-epochs": 10, "student-epochs": 30, "batch-size": 16, "learning-rate": 0.01,
              "noise": "gaussian", "epsilon": 0.0, "sigma": 0.5, "num-queries": 100, "noise-data": 60,
              # the site gate: the mesh's Envoy, next to this Python
              "site-gate-envoy": str(Path(sys.executable).with_name("envoy"))}
    (job_dir / "job.json").write_text(json.dumps(config))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(job_dir / "home")}
    launcher = subprocess.Popen([str(FLOWER_PYTHON), str(APP / "launch_flower.py"), str(job_dir / "job.json")],
                                cwd=job_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    nodes: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 300
        while not (job_dir / "join.json").exists():
            assert launcher.poll() is None, launcher.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the SuperLink never became ready"
            time.sleep(0.5)
        join = json.loads((job_dir / "join.json").read_text())
        host, port = join["superlink"].rsplit(":", 1)
        assert host == "127.0.0.1"
        # The SuperLink speaks TLS with a certificate the job's CA vouches for, for the address dialled
        context = ssl.create_default_context(cafile=join["root_certificates"])
        with socket.create_connection((host, int(port)), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        for site in ("site-a", "site-b"):
            home = tmp_path / site
            home.mkdir()
            nodes.append(subprocess.Popen(
                [str(FLOWER_PYTHON.parent / "flower-supernode"), "--superlink", join["superlink"],
                 "--root-certificates", join["root_certificates"], "--host", "127.0.0.1", "--port",
                 str(_free_port()), "--node-config", f'data-path="{files[site]}" client-id="{site}"'],
                cwd=home, env={**env, "HOME": str(home), "PATH": f"{FLOWER_PYTHON.parent}:{env['PATH']}"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        # Execute
        stdout, stderr = launcher.communicate(timeout=900)
    finally:
        for proc in [launcher, *nodes]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    # Assert: both sites committed to their own files (SHA-256 of the file: header and rows, each
    # line ending in a newline), and their teachers labelled the server's queries usefully
    assert launcher.returncode == 0, stderr[-3000:]
    events = events_of(stdout)
    import hashlib

    got = {e["client_id"]: (e["sha256"], e["sample_count"]) for e in events if e["type"] == "commitment"}
    assert got == {site: (hashlib.sha256(files[site].read_bytes()).hexdigest(), 120) for site in ("site-a", "site-b")}
    (round_event,) = [e for e in events if e["type"] == "round"]
    assert round_event["queries"] == 60 and round_event["accuracy"] >= 0.8, round_event


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
