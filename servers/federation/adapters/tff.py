"""TensorFlow Federated jobs as local processes: DP-FedAvg (`servers/federation/apps/tff/
dp_fedavg.py`) runs in TFF's own virtualenv (`.venv-tff`, `make tff-venv`: TF 2.14, protobuf 4,
numpy < 2, which neither the mesh nor the other frameworks' environments can hold).

TFF 0.87 simulates on its C++ worker binary, a child process serving gRPC on a port it picks on
*every* interface (its only flag is `--port`). So that a simulation reaches nothing and nothing
reaches it, the job runs by default in a network namespace of its own (`unshare --net`, which
needs root or CAP_SYS_ADMIN): only its own loopback exists there, which the app brings up.
Isolation "none" runs it in the host's network (a container whose pod network is closed by a
NetworkPolicy, say) and the worker's port is then open on the host's interfaces.

The worker binary stays in the job's process group (unshare execs, keeping the pid), which the
runner kills on cancel, limits and restart recovery: it outlives a Python process that is only
killed itself."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Literal

from servers.federation.domain.ports import Launch

APP = Path(__file__).resolve().parents[1] / "apps" / "tff" / "dp_fedavg.py"
# TensorFlow's C++ start-up chatter (CPU feature notices) is not the job's log.
TFF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
Isolation = Literal["netns", "none"]


@functools.cache
def _unshare() -> tuple[str, str]:
    """(the unshare command, "") when this process may make network namespaces, else ("", why not)."""
    command = shutil.which("unshare") or ""
    if not command:
        return "", "`unshare` (util-linux) is not installed"
    try:
        done = subprocess.run([command, "--net", "--", "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"`unshare --net` failed ({exc})"
    if done.returncode != 0:
        return "", f"`unshare --net` is not permitted here ({done.stderr.strip()[:200]})"
    return command, ""


def unavailable(tff_python: Path | None, isolation: Isolation = "netns") -> str:
    """"" when TFF jobs can run here, else why not."""
    if tff_python is None or not tff_python.exists():
        return f"the TensorFlow Federated environment is missing ({tff_python}; make tff-venv)"
    if not APP.exists():
        return f"the TFF DP-FedAvg app is missing ({APP})"
    if isolation == "netns":
        _command, why_not = _unshare()
        if why_not:
            return (f"TFF jobs run in their own network namespace and {why_not}; set "
                    "MLMESH_FEDERATION_TFF_ISOLATION=none to run them in the host's network (TFF's worker binary "
                    "then listens on every interface)")
    return ""


def launch(tff_python: Path, job_dir: Path, isolation: Isolation = "netns") -> Launch:
    argv = [str(tff_python), str(APP), str(job_dir / "job.json")]
    if isolation == "netns":
        command, why_not = _unshare()
        if why_not:
            raise RuntimeError(why_not)
        argv = [command, "--net", "--", *argv]
    return Launch(argv=argv, env=dict(TFF_ENV))
