"""The Optimizer's argo executor (MLMESH_OPTIMIZER_EXECUTOR=argo): an agent's training worker runs as
an Argo Workflow of the `mlmesh-optimizer-training` WorkflowTemplate
(k8s/argo/optimizer-training-workflowtemplate.yaml) instead of a local process group.

The template runs `servers.optimizer.worker train` in the rl image with exactly the command and
environment `WorkerRunner.train` starts locally (k8s/generate.py writes it from the same;
tests/integration/test_optimizer_argo.py compares the two). `WorkerRunner` itself is reused: it
writes spec.json into the agent's directory on the work claim (mounted in the pod at the same path),
reads the worker's event lines (through the Argo Server's log API here) and result.json after.

Only training is a workflow: planning a day (OptimizeDay) and evaluating a stored policy
(EvaluateAgent) are short, answer the caller's RPC directly and stay worker processes in the
Optimizer's own pod (it runs from the rl image).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servers.common import errors
from servers.common.argo import ArgoJobRunner
from servers.common.processes import RunRequest
from servers.optimizer.adapters.worker_runner import TrainOutcome, WorkerRunner
from servers.optimizer.settings import OptimizerArgoSettings

TEMPLATE = "mlmesh-optimizer-training"
SETTING = "MLMESH_OPTIMIZER_ARGO__"
WORKER = ["-m", "servers.optimizer.worker", "train", "--spec"]


def parameters(settings: OptimizerArgoSettings, work_root: Path):
    """The template's parameters for a training worker run (`RunRequest` as WorkerRunner.train makes it)."""
    mount = (settings.work_mount or work_root).resolve()

    def of(request: RunRequest) -> dict[str, str]:
        argv = request.argv
        if len(argv) != 8 or argv[1:5] != WORKER or argv[6] != "--out":
            raise errors.FailedPrecondition(f"the {TEMPLATE} template runs the training worker only, not "
                                            f"{' '.join(argv[1:4])}", reason="ARGO_TEMPLATE_MISMATCH")
        work = Path(argv[5]).parent
        if argv[5] != str(work / "spec.json") or argv[7] != str(work / "out"):
            raise errors.FailedPrecondition(f"the {TEMPLATE} template reads spec.json and writes out/ in one "
                                            "directory", reason="ARGO_TEMPLATE_MISMATCH")
        if not work.resolve().is_relative_to(mount):
            raise errors.FailedPrecondition(
                f"the agent's directory {work} is not on the work claim, which the {TEMPLATE} template mounts at "
                f"{mount}: set MLMESH_OPTIMIZER_WORK_DIR to {mount} and mount {settings.work_claim} there",
                reason="ARGO_WORK_DIR")
        return {
            "job-id": work.name,
            "work-dir": str(work),
            "time-limit-seconds": str(request.time_limit_seconds),
            "memory-limit-bytes": str(request.memory_limit_bytes),
            "rl-image": settings.image,
            "work-claim": settings.work_claim,
        }

    return of


def argo_runner(settings: OptimizerArgoSettings, work_root: Path, *, transport=None) -> ArgoJobRunner:
    return ArgoJobRunner(settings, template=TEMPLATE, setting=SETTING, parameters=parameters(settings, work_root),
                         what="the training job", transport=transport)


class ArgoWorker:
    """Implements `domain.ports.Worker`: training on Argo, planning and evaluation in local processes."""

    def __init__(self, local: WorkerRunner, runner: ArgoJobRunner):
        self.local, self.runner = local, runner
        self.trainer = WorkerRunner(local.rl_python, local.repo_root, runner=runner,  # type: ignore[arg-type]
                                    grid_cache=local.grid_cache)

    async def train(self, spec: dict[str, Any], work_dir: Path, **kwargs: Any) -> TrainOutcome:
        why_not = self.runner.unconfigured()
        if why_not:  # before WorkerRunner writes anything
            raise errors.FailedPrecondition(why_not, reason="ARGO_NOT_CONFIGURED")
        return await self.trainer.train(spec, work_dir, **kwargs)

    async def optimize(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await self.local.optimize(*args, **kwargs)

    async def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await self.local.evaluate(*args, **kwargs)

    def kill_leftover(self, pid_file: Path) -> bool:
        # worker.pid holds the training workflow's record (ArgoJobRunner.run); a local process's pid
        # from before a switch of executor is killed as locally.
        return self.runner.kill_leftover(pid_file) or self.local.kill_leftover(pid_file)

    async def close(self) -> None:
        await self.runner.close()
