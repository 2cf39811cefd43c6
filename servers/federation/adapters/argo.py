"""The Federation's argo executor (MLMESH_FEDERATION_EXECUTOR=argo): a federated job's launcher runs
as an Argo Workflow of its framework's WorkflowTemplate instead of a local process group:

    fedpate  mlmesh-federated-fedpate  the flower image: Flower's deployment engine, all in the pod
    flare    mlmesh-federated-flare    the flare image: FLARE's simulator (SimEnv), all in the pod
    tff      mlmesh-federated-tff      the tff image: TFF's simulation and its C++ worker, in the pod

(k8s/argo/federated-*-workflowtemplate.yaml). Each template runs exactly the command and environment
`LocalFrameworks` and the core start locally (k8s/generate.py builds them from that code;
tests/integration/test_federation_argo.py and tests/deploy/test_k8s.py compare the two), with one
difference: TFF runs in the pod's network (isolation "none"), not in a network namespace of its
own -- a pod cannot make one without CAP_SYS_ADMIN, and the namespace's default-deny ingress policy
closes the worker's port instead.

Real-mode jobs (a FedPATE SuperLink that remote SuperNodes join, a job on a provisioned FLARE
server) fail once prepared, before anything is submitted: their servers would listen inside the
workflow's pod, which nothing exposes to the sites.

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
from servers.federation.adapters import flare, tff
from servers.federation.adapters.frameworks import APPS, LocalFrameworks
from servers.federation.domain.ports import Launch
from servers.federation.domain.records import Framework
from servers.federation.settings import FederationArgoSettings

SETTING = "MLMESH_FEDERATION_ARGO__"


class Template:
    """One framework's WorkflowTemplate: its name, the launcher it runs, the image parameter."""

    def __init__(self, framework: Framework, launcher: Path, environment: str):
        self.framework, self.launcher, self.environment = framework, launcher, environment
        self.name = f"mlmesh-federated-{framework.value}"
        self.image_parameter = f"{environment}-image"  # the image holding /opt/<environment>

    def image(self, settings: FederationArgoSettings) -> str:
        return {"flower": settings.image, "flare": settings.flare_image, "tff": settings.tff_image}[self.environment]


TEMPLATES = {t.framework: t for t in (Template(Framework.FEDPATE, APPS / "launch_flower.py", "flower"),
                                      Template(Framework.FLARE, flare.LAUNCHER, "flare"),
                                      Template(Framework.TFF, tff.APP, "tff"))}
BY_LAUNCHER = {t.launcher.name: t for t in TEMPLATES.values()}
assert set(TEMPLATES) == set(Framework), "every framework needs its WorkflowTemplate (k8s/generate.py writes them)"


class ArgoFrameworks:
    """Implements `domain.ports.Frameworks` for the argo executor: every framework, simulation only."""

    def __init__(self, local: LocalFrameworks, runner: ArgoJobRunner):
        self.local, self.runner = local, runner

    def available(self, framework: Framework) -> str:
        if framework.value in self.local.commands:
            return (f"MLMESH_FEDERATION_COMMANDS replaces the {framework} launcher, which the "
                    f"{TEMPLATES[framework].name} WorkflowTemplate cannot run; unset it or use "
                    "MLMESH_FEDERATION_EXECUTOR=local")
        # The frameworks' environments are the templates' images, not this server's: nothing to check here.
        return self.runner.unconfigured()

    def launch(self, framework: Framework, job_dir: Path) -> Launch:
        # The command the template runs, as this server would start it locally (the stand-in and the
        # generator map the environments' Pythons to the images' /opt/<environment>/bin/python).
        if framework is Framework.TFF:
            return tff.launch(self.local.tff_python, job_dir, "none")  # the pod's network (module docstring)
        if framework is Framework.FLARE:
            return flare.launch(self.local.flare_python, job_dir)
        return self.local.launch(framework, job_dir)

    async def abort(self, framework: Framework, job_dir: Path) -> None:
        return None  # only real-mode FLARE jobs start anything outside the job's process, and they are refused


def template_of(request: RunRequest) -> Template:
    """The template of a launcher run (`RunRequest` as the core makes it), or FailedPrecondition."""
    template = BY_LAUNCHER.get(Path(request.argv[1]).name) if len(request.argv) == 3 else None
    if template is None or request.argv[2] != str(request.cwd / "job.json"):
        raise errors.FailedPrecondition(
            f"the federated WorkflowTemplates run the frameworks' launchers "
            f"({', '.join(sorted(BY_LAUNCHER))}) only, not {' '.join(request.argv[:3])}",
            reason="ARGO_TEMPLATE_MISMATCH")
    return template


def parameters(settings: FederationArgoSettings, work_root: Path):
    """The template's parameters for a launcher run (`RunRequest` as the core makes it)."""
    mount = (settings.work_mount or work_root).resolve()

    def of(request: RunRequest) -> dict[str, str]:
        template = template_of(request)
        job_dir = request.cwd.resolve()
        if not job_dir.is_relative_to(mount):
            raise errors.FailedPrecondition(
                f"the job's directory {job_dir} is not on the work claim, which the {template.name} template mounts "
                f"at {mount}: set MLMESH_FEDERATION_WORK_DIR to {mount} and mount {settings.work_claim} there",
                reason="ARGO_WORK_DIR")
        if _real_mode(request.cwd / "job.json"):
            raise errors.FailedPrecondition(
                f"a real-mode {template.framework} job cannot run on the argo executor: its server would listen "
                "inside the workflow's pod, which nothing exposes to the client sites; run it on a Federation "
                "server with MLMESH_FEDERATION_EXECUTOR=local", reason="ARGO_REAL_MODE")
        return {
            "job-id": job_dir.name,
            "job-dir": str(request.cwd),
            "time-limit-seconds": str(request.time_limit_seconds),
            "memory-limit-bytes": str(request.memory_limit_bytes),
            template.image_parameter: template.image(settings),
            "work-claim": settings.work_claim,
        }

    return of


def _real_mode(config: Path) -> bool:
    """Whether the job's configuration (job.json, written by the core before the launch) is real mode:
    a FedPATE SuperLink for remote SuperNodes, or a FLARE job for a provisioned FLARE server."""
    try:
        values = json.loads(config.read_text())
        return values.get("mode") == "real" or bool(values.get("flare-admin-kit"))
    except (OSError, ValueError, AttributeError):
        return False


def argo_runner(settings: FederationArgoSettings, work_root: Path, *, stderr_tail_lines: int = 20,
                transport=None) -> ArgoJobRunner:
    return ArgoJobRunner(settings, template=lambda request: template_of(request).name, setting=SETTING,
                         parameters=parameters(settings, work_root), what="the federated job",
                         stderr_tail_lines=stderr_tail_lines, transport=transport)
