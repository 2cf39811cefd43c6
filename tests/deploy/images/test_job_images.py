"""The federated job images run a tiny job as their WorkflowTemplate's step runs it: the job's directory
laid out and its job.json written by the Federation core's own code (`specs.check_request`,
`appconfig.app_config`: the keys and defaults a real job gets), mounted at the same path, the launcher
started by the environment's Python as the non-root user on a read-only root filesystem with no network
but its loopback (a pod's closed by the default-deny policy), HOME and TMPDIR in the job's directory.
2 clients, 1 round on tiny seeded blobs: exit 0, the `MLMESH_EVENT` lines the core reads on stdout
(the framework, each client's commitment, the round), the model in output/."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy.images.conftest import UID, image, podman
from tests.fixtures.federation import blobs_csv

APPS = "/app/servers/federation/apps"
DATASET_ID = "5d066d58-06de-47ab-a2f6-c8f413e21947"  # any well-formed id: nothing downloads it here


def prepare(job_dir: Path, spec) -> Path:
    """What the core's PREPARING step leaves (service.py `_steps`): data/, output/, home/, tmp/, the dataset
    at data/dataset.csv and job.json."""
    from servers.federation.domain import appconfig, specs
    from servers.federation.domain.records import FederatedData, JobRequest

    for sub in ("data", "output", "home", "tmp"):
        (job_dir / sub).mkdir(parents=True)
    data_path = job_dir / "data" / "dataset.csv"
    data_path.write_bytes(blobs_csv())
    request = specs.check_request(JobRequest(spec=spec, data=FederatedData(dataset_id=DATASET_ID, seed=3)))
    config = appconfig.app_config(request, data_path=data_path, output_dir=job_dir / "output")
    (job_dir / "job.json").write_text(json.dumps(config, indent=1, sort_keys=True))
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(job_dir)], check=True)
    return job_dir / "job.json"


def run_step(name: str, job_dir: Path, argv: list[str], env: dict[str, str]) -> tuple[int, list[dict], str]:
    """(exit code, the MLMESH_EVENT payloads in order, stderr's tail) of the step's command in the image."""
    if podman("image", "exists", image(name), check=False).returncode != 0:
        pytest.fail(f"image {name} is not built: run `make images`")
    env = {"HOME": str(job_dir / "home"), "TMPDIR": str(job_dir / "tmp"), "PYTHONUNBUFFERED": "1", **env}
    args = ["run", "--rm", "--read-only", "--user", f"{UID}:{UID}", "--network", "none",
            "-v", f"{job_dir}:{job_dir}", "--workdir", str(job_dir), "--entrypoint", argv[0]]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    out = podman(*args, image(name), *argv[1:], check=False, timeout=600)
    events = [json.loads(line.removeprefix("MLMESH_EVENT ")) for line in out.stdout.splitlines()
              if line.startswith("MLMESH_EVENT ")]
    return out.returncode, events, out.stdout[-3000:] + out.stderr[-3000:]


def check_events(events: list[dict], framework: str) -> None:
    kinds = [e["type"] for e in events]
    assert kinds[0] == "framework" and events[0]["version"].startswith(framework), events[:1]
    commitments = [e for e in events if e["type"] == "commitment"]
    assert len(commitments) == 2 and all(len(e["sha256"]) == 64 and e["sample_count"] > 0 for e in commitments)
    rounds = [e for e in events if e["type"] == "round" and "accuracy" in e]
    assert [e["round"] for e in rounds][-1:] == [1] and 0 <= rounds[-1]["accuracy"] <= 1, rounds


def test_the_flare_image_runs_a_fedavg_job(tmp_path):
    from servers.federation.domain.records import FlareSpec

    job_dir = tmp_path / "flare-job"
    job = prepare(job_dir, FlareSpec(epochs=5, batch_size=16, num_clients=2, num_rounds=1, learning_rate=0.01))
    code, events, tail = run_step("flare", job_dir, ["/opt/flare/bin/python", f"{APPS}/flare/launch_flare.py", str(job)],
                                  {})
    assert code == 0, tail
    check_events(events, "nvflare 2.9.0")
    assert (job_dir / "output" / "model.pt").stat().st_size > 0 and (job_dir / "output" / "result.json").exists()


def test_the_tff_image_runs_a_dp_fedavg_job(tmp_path):
    from servers.federation.domain.records import TffSpec

    job_dir = tmp_path / "tff-job"
    job = prepare(job_dir, TffSpec(imb_parameter=1.0, dp_parameter=0.1, n_clients=2, n_samples=1000,
                                   target_label="target", num_rounds=1, epochs=5, batch_size=16))
    code, events, tail = run_step("tff", job_dir, ["/opt/tff/bin/python", f"{APPS}/tff/dp_fedavg.py", str(job)],
                                  {"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert code == 0, tail
    check_events(events, "tensorflow-federated 0.87.0")
    assert (job_dir / "output" / "model.h5").stat().st_size > 0 and (job_dir / "output" / "result.json").exists()
