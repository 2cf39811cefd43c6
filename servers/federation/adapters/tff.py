"""TensorFlow Federated jobs as local processes: DP-FedAvg (`servers/federation/apps/tff/
dp_fedavg.py`) runs in TFF's own virtualenv (`.venv-tff`, `make tff-venv`: TF 2.14, protobuf 4,
numpy < 2, which neither the mesh nor the other frameworks' environments can hold). TFF starts
its C++ worker binary as a child; it stays in the job's process group, which the runner kills on
cancel, limits and restart recovery (the binary outlives a Python process that is only killed
itself)."""

from __future__ import annotations

from pathlib import Path

from servers.federation.domain.ports import Launch

APP = Path(__file__).resolve().parents[1] / "apps" / "tff" / "dp_fedavg.py"
# TensorFlow's C++ start-up chatter (CPU feature notices) is not the job's log.
TFF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def unavailable(tff_python: Path | None) -> str:
    """"" when TFF jobs can run here, else why not."""
    if tff_python is None or not tff_python.exists():
        return f"the TensorFlow Federated environment is missing ({tff_python}; make tff-venv)"
    if not APP.exists():
        return f"the TFF DP-FedAvg app is missing ({APP})"
    return ""


def launch(tff_python: Path, job_dir: Path) -> Launch:
    return Launch(argv=[str(tff_python), str(APP), str(job_dir / "job.json")], env=dict(TFF_ENV))
