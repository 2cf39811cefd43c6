"""Which frameworks this server runs, and how a job of one starts: a launcher in the framework's
own virtualenv (made by the Makefile, as .venv-ml is), one process group per job.

FedPATE runs on Flower (`servers/federation/apps/`, `.venv-flower`); NVIDIA FLARE on FLARE's
simulator (`adapters/flare.py`, `.venv-flare`); TFF DP-FedAvg on TensorFlow Federated's
simulation (`adapters/tff.py`, `.venv-tff`). `commands` (settings) replaces a framework's launcher
command: a deployment that installs Flower elsewhere points it there."""

from __future__ import annotations

from pathlib import Path

from servers.federation.adapters import flare, tff
from servers.federation.domain.ports import Launch
from servers.federation.domain.records import Framework

APPS = Path(__file__).resolve().parents[1] / "apps"
# Flower must neither install packages at run time, nor look for updates, nor report telemetry.
FLOWER_ENV = {"FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "FLWR_DISABLE_UPDATE_CHECK": "1",
              "FLWR_TELEMETRY_ENABLED": "0"}


class LocalFrameworks:
    """Implements `domain.ports.Frameworks` for local processes."""

    def __init__(self, *, flower_python: Path, commands: dict[str, list[str]] | None = None,
                 flare_python: Path | None = None, tff_python: Path | None = None,
                 tff_isolation: tff.Isolation = "netns"):
        self.flower_python = flower_python
        self.flare_python = flare_python
        self.tff_python = tff_python
        self.tff_isolation = tff_isolation
        self.commands = dict(commands or {})

    def available(self, framework: Framework) -> str:
        if framework.value in self.commands:
            return ""
        if framework is Framework.FEDPATE:
            if not self.flower_python.exists():
                return f"the Flower environment is missing ({self.flower_python}; make flower-venv)"
            if not (APPS / "launch_flower.py").exists():
                return "the FedPATE launcher on Flower is not built yet (docs/federation.md)"
            return ""
        if framework is Framework.FLARE:
            return flare.unavailable(self.flare_python)
        if framework is Framework.TFF:
            return tff.unavailable(self.tff_python, self.tff_isolation)
        return "its launcher is not built yet (docs/federation.md says what exists)"

    def launch(self, framework: Framework, job_dir: Path) -> Launch:
        if framework.value in self.commands:
            return Launch(argv=[*self.commands[framework.value]], env=dict(FLOWER_ENV))
        if framework is Framework.FEDPATE:
            return Launch(argv=[str(self.flower_python), str(APPS / "launch_flower.py"), str(job_dir / "job.json")],
                          env=dict(FLOWER_ENV))
        if framework is Framework.FLARE and self.flare_python is not None:
            return flare.launch(self.flare_python, job_dir)
        if framework is Framework.TFF and self.tff_python is not None:
            return tff.launch(self.tff_python, job_dir, self.tff_isolation)
        raise ValueError(f"no launcher for {framework}")

    async def abort(self, framework: Framework, job_dir: Path) -> None:
        if framework is Framework.FLARE and self.flare_python is not None and framework.value not in self.commands:
            await flare.abort(self.flare_python, job_dir)
