"""NVIDIA FLARE jobs as local processes: the launcher (`servers/federation/apps/flare/
launch_flare.py`) runs in FLARE's own virtualenv (`.venv-flare`, `make flare-venv`) and drives
FLARE's simulator (SimEnv) with the job's directory as FLARE's workspace, HOME and TMPDIR (the
server sets those), so nothing lands in ~/.nvflare or /tmp."""

from __future__ import annotations

from pathlib import Path

from servers.federation.domain.ports import Launch

LAUNCHER = Path(__file__).resolve().parents[1] / "apps" / "flare" / "launch_flare.py"


def unavailable(flare_python: Path | None) -> str:
    """"" when FLARE jobs can run here, else why not."""
    if flare_python is None or not flare_python.exists():
        return f"the NVIDIA FLARE environment is missing ({flare_python}; make flare-venv)"
    if not LAUNCHER.exists():
        return f"the FLARE launcher is missing ({LAUNCHER})"
    return ""


def launch(flare_python: Path, job_dir: Path) -> Launch:
    return Launch(argv=[str(flare_python), str(LAUNCHER), str(job_dir / "job.json")], env={})
