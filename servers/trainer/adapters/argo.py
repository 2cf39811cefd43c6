"""The argo executor: each training job becomes an Argo Workflow that runs the
`mlmesh-training` WorkflowTemplate (k8s/argo/training-workflowtemplate.yaml), submitted to an
Argo Server's REST API:

    POST /api/v1/workflows/{namespace}                     {"namespace": ..., "workflow": {...}}
    GET  /api/v1/workflows/{namespace}/{name}              status.phase, status.nodes, status.message
    PUT  /api/v1/workflows/{namespace}/{name}/terminate    (cancel)

The REST client is the mesh's (`servers.common.argo.ArgoServer`). `render_workflow` is pure, so
the documents can be validated offline against the Argo and Kubernetes schemas
(tests/integration/test_trainer_argo.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from servers.common import argo
from servers.trainer.domain import jobs as J
from servers.trainer.domain.jobs import Job
from servers.trainer.domain.ports import ModelInfo
from servers.trainer.settings import ArgoSettings

# Which job state a running step means (by the step's name in the template).
_STEP_STATES = {"pre-train": J.PRE_TRAINING, "train": J.TRAINING, "train-image": J.TRAINING,
                "post-train": J.POST_TRAINING}


def render_workflow(job: Job, settings: ArgoSettings, model: ModelInfo | None = None, seed: int = 0) -> dict[str, Any]:
    """The Workflow that runs the training template for `job`."""
    training_image = ""
    if model is not None and not model.recipe_sha256 and model.image_reference:
        ref = model.image_reference.split("@", 1)[0]
        training_image = f"{ref}@{model.image_digest}" if model.image_digest else ref
    parameters = {
        "model-id": job.model_id,
        "job-id": job.job_id,
        "registry-target": settings.registry_target,
        "time-limit-seconds": str(job.time_limit_seconds),
        "memory-limit-bytes": str(job.memory_limit_bytes),
        "seed": str(seed),
        "trainer-image": settings.trainer_image,
        "ml-image": settings.ml_image,
        "training-image": training_image,
    }
    return argo.render_workflow(settings.template_name, settings.namespace, parameters,
                                labels={"mlmesh.io/job-id": job.job_id, "mlmesh.io/model-id": job.model_id})


def state_of(workflow: dict[str, Any]) -> tuple[str, str]:
    """(job state, failure reason) of a Workflow as the Argo Server returns it."""
    status = workflow.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        return J.SUCCEEDED, ""
    if phase in ("Failed", "Error"):
        failed = [n for n in (status.get("nodes") or {}).values()
                  if n.get("type") == "Pod" and n.get("phase") in ("Failed", "Error")]
        detail = "; ".join(f"{n.get('displayName')}: {n.get('message', '')}".strip() for n in failed)
        message = status.get("message") or ""
        return J.FAILED, f"the Argo workflow failed: {detail or message or phase}"
    running = [n.get("displayName") for n in (status.get("nodes") or {}).values()
               if n.get("type") == "Pod" and n.get("phase") in ("Running", "Pending", "Succeeded")]
    state = J.QUEUED
    for name in running:  # the latest step that started
        candidate = _STEP_STATES.get(name or "")
        if candidate and J.STATES.index(candidate) > J.STATES.index(state):
            state = candidate
    return state, ""


class ArgoWorkflows:
    """Implements `domain.ports.Workflows` against an Argo Server (the mesh's `ArgoServer` client)."""

    def __init__(self, settings: ArgoSettings, *, transport: httpx.AsyncBaseTransport | None = None, seed: int = 0):
        self.settings, self.seed = settings, seed
        self.api = argo.ArgoServer(settings, setting="MLMESH_TRAINER_ARGO__", transport=transport)

    async def submit(self, job: Job, model: ModelInfo | None = None) -> str:
        return await self.api.submit(render_workflow(job, self.settings, model, self.seed))

    async def watch(self, name: str) -> AsyncIterator[tuple[str, str]]:
        last = None
        while True:
            state, reason = state_of(await self.api.status(name))
            if state != last:
                last = state
                yield state, reason
            if state in J.FINAL_STATES:
                return
            await asyncio.sleep(self.settings.poll_seconds)

    async def stop(self, name: str) -> None:
        await self.api.terminate(name)

    async def close(self) -> None:
        await self.api.close()
