"""The Federation's argo executor (MLMESH_FEDERATION_EXECUTOR=argo): a federated job's launcher runs
as an Argo Workflow of the `mlmesh-federated-job` WorkflowTemplate
(k8s/argo/federated-job-workflowtemplate.yaml) instead of a local process group.

That template runs FedPATE's Flower launcher (all of Flower's deployment engine inside the pod), with
exactly the command and environment `LocalFrameworks` and the core start locally (k8s/generate.py
builds it from them; tests/integration/test_federation_argo.py compares the two). No template runs
NVIDIA FLARE or TensorFlow Federated, so on this executor those jobs are refused at creation with
FAILED_PRECONDITION naming the framework. A real-mode FedPATE job (remote SuperNodes) fails once
prepared, before anything is submitted: its SuperLink would listen inside the workflow's pod, which
nothing exposes to the sites.

The core is unchanged: it prepares the job's directory (dataset, job.json) on the work claim the
pod mounts at the same path, the workflow runs the launcher, its event lines come back through the
Argo Server's log API, and the core registers the model the launcher left in output/.
"""

from __future__ import annotations

import json
from pathlib import Path

from servers.common import errors
from servers.common.argo import ArgoJobRunner
from servers.common.processes import RunRequest
from servers.federation.adapters.frameworks import LocalFrameworks
from servers.federation.domain.ports import Launch
from servers.federation.domain.records import Framework
from servers.federation.settings import FederationArgoSettings

TEMPLATE = "mlmesh-federated-job"
SETTING = "MLMESH_FEDERATION_ARGO__"
LAUNCHER = "launch_flower.py"
# The frameworks a WorkflowTemplate exists for.
ON_ARGO = (Framework.FEDPATE,)


class ArgoFrameworks:
    """Implements `domain.ports.Frameworks` for the argo executor: FedPATE only (the one template)."""

    def __init__(self, local: LocalFrameworks, runner: ArgoJobRunner):
        self.local, self.runner = local, runner

    def available(self, framework: Framework) -> str:
        if framework not in ON_ARGO:
            return (f"this server runs jobs on Argo Workflows (MLMESH_FEDERATION_EXECUTOR=argo), whose "
                    f"{TEMPLATE} WorkflowTemplate runs {', '.join(str(f) for f in ON_ARGO)} only; {framework} jobs "
                    "need a Federation server with MLMESH_FEDERATION_EXECUTOR=local")
        if framework.value in self.local.commands:
            return (f"MLMESH_FEDERATION_COMMANDS replaces the {framework} launcher, which the {TEMPLATE} "
                    "WorkflowTemplate cannot run; unset it or use MLMESH_FEDERATION_EXECUTOR=local")
        return self.runner.unconfigured()

    def launch(self, framework: Framework, job_dir: Path) -> Launch:
        # The command the template runs: the server runs from the same image (the flower image), so
        # its Flower Python and app paths are the pod's.
        return self.local.launch(framework, job_dir)

    async def abort(self, framework: Framework, job_dir: Path) -> None:
        return None  # only real-mode FLARE jobs start anything outside the job's workflow


def parameters(settings: FederationArgoSettings, work_root: Path):
    """The template's parameters for a launcher run (`RunRequest` as the core makes it)."""
    mount = (settings.work_mount or work_root).resolve()

    def of(request: RunRequest) -> dict[str, str]:
        job_dir = request.cwd.resolve()
        if not job_dir.is_relative_to(mount):
            raise errors.FailedPrecondition(
                f"the job's directory {job_dir} is not on the work claim, which the {TEMPLATE} template mounts at "
                f"{mount}: set MLMESH_FEDERATION_WORK_DIR to {mount} and mount {settings.work_claim} there",
                reason="ARGO_WORK_DIR")
        if _real_mode(request.cwd / "job.json"):
            raise errors.FailedPrecondition(
                "a real-mode FedPATE job cannot run on the argo executor: its SuperLink would listen inside the "
                "workflow's pod, which nothing exposes to the client sites; run it on a Federation server with "
                "MLMESH_FEDERATION_EXECUTOR=local", reason="ARGO_REAL_MODE")
        expected = [LAUNCHER, str(request.cwd / "job.json")]
        if len(request.argv) != 3 or [Path(request.argv[1]).name, request.argv[2]] != expected:
            raise errors.FailedPrecondition(f"the {TEMPLATE} template runs FedPATE's Flower launcher only, not "
                                            f"{' '.join(request.argv[:3])}", reason="ARGO_TEMPLATE_MISMATCH")
        return {
            "job-id": job_dir.name,
            "job-dir": str(request.cwd),
            "time-limit-seconds": str(request.time_limit_seconds),
            "memory-limit-bytes": str(request.memory_limit_bytes),
            "flower-image": settings.image,
            "work-claim": settings.work_claim,
        }

    return of


def _real_mode(config: Path) -> bool:
    """Whether the job's configuration (job.json, written by the core before the launch) is real mode."""
    try:
        return json.loads(config.read_text()).get("mode") == "real"
    except (OSError, ValueError, AttributeError):
        return False


def argo_runner(settings: FederationArgoSettings, work_root: Path, *, stderr_tail_lines: int = 20,
                transport=None) -> ArgoJobRunner:
    return ArgoJobRunner(settings, template=TEMPLATE, setting=SETTING, parameters=parameters(settings, work_root),
                         what="the federated job", stderr_tail_lines=stderr_tail_lines, transport=transport)
