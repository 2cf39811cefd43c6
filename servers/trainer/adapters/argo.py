"""The argo executor: each training job becomes an Argo Workflow that runs the
`mlmesh-training` WorkflowTemplate (k8s/argo/training-workflowtemplate.yaml), submitted to an
Argo Server's REST API:

    POST /api/v1/workflows/{namespace}                     {"namespace": ..., "workflow": {...}}
    GET  /api/v1/workflows/{namespace}/{name}              status.phase, status.nodes, status.message
    PUT  /api/v1/workflows/{namespace}/{name}/terminate    (cancel)

`render_workflow` is pure, so the documents can be validated offline against the Argo and
Kubernetes schemas (tests/integration/test_trainer_argo.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from servers.common import errors
from servers.trainer.domain import jobs as J
from servers.trainer.domain.jobs import Job
from servers.trainer.domain.ports import ModelInfo
from servers.trainer.settings import ArgoSettings

log = logging.getLogger("mlmesh.trainer.argo")

API_VERSION = "argoproj.io/v1alpha1"
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
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "generateName": f"{settings.template_name}-",
            "namespace": settings.namespace,
            "labels": {
                "app.kubernetes.io/part-of": "mlmesh",
                "mlmesh.io/job-id": job.job_id,
                "mlmesh.io/model-id": job.model_id,
            },
        },
        "spec": {
            "workflowTemplateRef": {"name": settings.template_name},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in parameters.items()]},
        },
    }


def create_request(workflow: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The body of POST /api/v1/workflows/{namespace} (io.argoproj.workflow.v1alpha1.WorkflowCreateRequest)."""
    return {"namespace": namespace, "workflow": workflow}


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
    """Implements `domain.ports.Workflows` against an Argo Server (httpx)."""

    def __init__(self, settings: ArgoSettings, *, transport: httpx.AsyncBaseTransport | None = None, seed: int = 0):
        self.settings, self.seed = settings, seed
        verify: Any = str(settings.ca_file) if settings.ca_file else settings.verify_tls
        self._client = httpx.AsyncClient(base_url=settings.server_url or "http://argo-server.invalid",
                                         timeout=settings.request_timeout_seconds, verify=verify,
                                         transport=transport)

    def _headers(self) -> dict[str, str]:
        if self.settings.token_file is None:
            return {}
        token = self.settings.token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        if not self.settings.server_url:
            raise errors.FailedPrecondition("the argo executor has no Argo Server: set MLMESH_TRAINER_ARGO__SERVER_URL",
                                            reason="ARGO_NOT_CONFIGURED")
        try:
            response = await self._client.request(method, path, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise errors.Unavailable(f"the Argo Server at {self.settings.server_url} is unavailable: {exc}",
                                     reason="ARGO_UNAVAILABLE") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            cls = errors.Unavailable if response.status_code >= 500 else errors.FailedPrecondition
            raise cls(f"the Argo Server refused {method} {path} ({response.status_code}): {message[:500]}",
                      reason="ARGO_REFUSED")
        return response.json()

    async def submit(self, job: Job, model: ModelInfo | None = None) -> str:
        ns = self.settings.namespace
        created = await self._call("POST", f"/api/v1/workflows/{ns}",
                                   create_request(render_workflow(job, self.settings, model, self.seed), ns))
        return created["metadata"]["name"]

    async def watch(self, name: str) -> AsyncIterator[tuple[str, str]]:
        last = None
        while True:
            workflow = await self._call("GET", f"/api/v1/workflows/{self.settings.namespace}/{name}")
            state, reason = state_of(workflow)
            if state != last:
                last = state
                yield state, reason
            if state in J.FINAL_STATES:
                return
            await asyncio.sleep(self.settings.poll_seconds)

    async def stop(self, name: str) -> None:
        await self._call("PUT", f"/api/v1/workflows/{self.settings.namespace}/{name}/terminate",
                         {"name": name, "namespace": self.settings.namespace})

    async def close(self) -> None:
        await self._client.aclose()
