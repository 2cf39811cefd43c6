"""The argo executor, offline: the WorkflowTemplate in k8s/argo/ and the Workflows the Trainer
renders are validated against Argo Workflows' typed models (hera, generated from Argo's
OpenAPI schema) and the Kubernetes JSON schemas in their strict form (kubernetes-validate);
the REST client is exercised against an in-process HTTP handler speaking the Argo Server's API.

hera's models ignore unknown fields, so "valid" here also means that dumping the parsed model
gives back the document unchanged: a misspelt field would be dropped and fail the test."""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import re
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from servers.common.argo import create_request
from servers.trainer.adapters.argo import ArgoWorkflows, render_workflow, state_of
from servers.trainer.domain import jobs as J
from servers.trainer.domain.ports import ModelInfo
from servers.trainer.settings import ArgoSettings

# Both are pinned in requirements/mesh.txt: imported plainly, so a missing one fails instead of skipping.
hera_models = importlib.import_module("hera.workflows.models")
kv_utils = importlib.import_module("kubernetes_validate.utils")

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "k8s" / "argo" / "training-workflowtemplate.yaml"
K8S_VERSION = "1.37.0"

JOB = J.Job(job_id="0b5e9a8e-5d1e-4a57-9a53-0f7d7e3f5d11", model_id="7c1d2a43-1b64-4cc1-9f7b-2b8f9bb4c0a2",
            state=J.QUEUED, executor="argo", time_limit_seconds=600, memory_limit_bytes=2 << 30,
            create_time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def template() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


def argo_valid(model_cls, doc: dict) -> None:
    parsed = model_cls.model_validate(doc)
    assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc, \
        "a field was not recognised by Argo's schema"


def k8s_valid(definition_file: str, doc: dict) -> None:
    """Validates `doc` against one strict Kubernetes definition (e.g. container-v1.json)."""
    from referencing import Registry, Resource

    schema_dir = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict"
    schema = kv_utils.schema_contents(f"{schema_dir}/{definition_file}", K8S_VERSION)
    defs = kv_utils.schema_contents(f"{schema_dir}/_definitions.json", K8S_VERSION)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    jsonschema.Draft202012Validator(schema, registry=registry).validate(doc)


def test_the_template_is_a_valid_argo_workflow_template():
    doc = template()
    assert doc["apiVersion"] == "argoproj.io/v1alpha1" and doc["kind"] == "WorkflowTemplate"
    argo_valid(hera_models.WorkflowTemplate, doc)


def test_a_misspelt_field_is_caught():
    doc = template()
    doc["spec"]["templates"][1]["container"]["imagee"] = "x"
    with pytest.raises(AssertionError, match="not recognised"):
        argo_valid(hera_models.WorkflowTemplate, doc)
    container = {"name": "main", **template()["spec"]["templates"][1]["container"], "imagee": "x"}
    with pytest.raises(jsonschema.ValidationError):
        k8s_valid("container-v1.json", container)


def test_containers_volumes_and_metadata_are_valid_kubernetes():
    doc = template()
    k8s_valid("objectmeta-meta-v1.json", doc["metadata"])
    for claim in doc["spec"]["volumeClaimTemplates"]:
        k8s_valid("persistentvolumeclaim-v1.json", claim)
    containers = [t for t in doc["spec"]["templates"] if "container" in t]
    assert {t["name"] for t in containers} == {"pre-train", "train-recipe", "train-image", "post-train"}
    for t in containers:
        # Argo names the main container itself; Kubernetes requires a name.
        k8s_valid("container-v1.json", {"name": "main", **t["container"]})


def test_the_three_steps_run_in_order_with_the_jobs_limits():
    doc = template()
    by_name = {t["name"]: t for t in doc["spec"]["templates"]}
    steps = by_name[doc["spec"]["entrypoint"]]["steps"]
    assert [[s["name"] for s in group] for group in steps] == [["pre-train"], ["train", "train-image"], ["post-train"]]
    for name in ("train-recipe", "train-image"):
        t = by_name[name]
        assert t["activeDeadlineSeconds"] == "{{workflow.parameters.time-limit-seconds}}"
        assert t["container"]["resources"]["limits"]["memory"] == "{{workflow.parameters.memory-limit-bytes}}"
    env = {e["name"] for e in by_name["train-recipe"]["container"]["env"]}
    assert {"MLMESH_DATASET_PATH", "MLMESH_DATASET_CONTENT_TYPE", "MLMESH_OUTPUT_PATH", "MLMESH_PARAMS",
            "MLMESH_SEED", "MLMESH_WORK_DIR"} <= env


def test_every_reference_in_the_template_resolves():
    doc = template()
    text = TEMPLATE.read_text()
    declared = {p["name"] for p in doc["spec"]["arguments"]["parameters"]}
    assert set(re.findall(r"\{\{workflow\.parameters\.([a-z-]+)\}\}", text)) <= declared
    by_name = {t["name"]: t for t in doc["spec"]["templates"]}
    outputs = {p["name"] for p in by_name["pre-train"]["outputs"]["parameters"]}
    assert set(re.findall(r"\{\{steps\.pre-train\.outputs\.parameters\.([a-z-]+)\}\}", text)) <= outputs
    for t in doc["spec"]["templates"]:
        inputs = {p["name"] for p in t.get("inputs", {}).get("parameters", [])}
        used = set(re.findall(r"\{\{inputs\.parameters\.([a-z-]+)\}\}", json.dumps(t)))
        assert used <= inputs, (t["name"], used - inputs)
        for group in t.get("steps", []):
            for step in group:
                target = by_name[step["template"]]
                given = {p["name"] for p in step.get("arguments", {}).get("parameters", [])}
                assert given == {p["name"] for p in target.get("inputs", {}).get("parameters", [])}, step["name"]


@pytest.mark.parametrize("model", [
    None,
    ModelInfo(model_id=JOB.model_id, dataset_id="d", state="PENDING", image_reference="registry.example/cnn:1.2",
              image_digest="sha256:" + "a" * 64),
])
def test_the_rendered_workflow_is_valid_and_sets_every_parameter(model):
    settings = ArgoSettings(namespace="ml-jobs")
    wf = render_workflow(JOB, settings, model, seed=7)
    argo_valid(hera_models.Workflow, wf)
    argo_valid(hera_models.WorkflowCreateRequest, create_request(wf, "ml-jobs"))
    k8s_valid("objectmeta-meta-v1.json", wf["metadata"])
    assert wf["spec"]["workflowTemplateRef"] == {"name": template()["metadata"]["name"]}
    given = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert set(given) == {p["name"] for p in template()["spec"]["arguments"]["parameters"]}
    assert given["time-limit-seconds"] == "600" and given["memory-limit-bytes"] == str(2 << 30)
    assert given["model-id"] == JOB.model_id and given["job-id"] == JOB.job_id and given["seed"] == "7"
    expected_image = "" if model is None else "registry.example/cnn:1.2@sha256:" + "a" * 64
    assert given["training-image"] == expected_image


def test_workflow_phases_map_to_job_states():
    def wf(phase, *nodes, message=""):
        return {"status": {"phase": phase, "message": message, "nodes": {
            str(i): {"displayName": n, "type": "Pod", "phase": p, "message": m} for i, (n, p, m) in enumerate(nodes)}}}

    assert state_of({}) == (J.QUEUED, "")
    assert state_of(wf("Running", ("pre-train", "Running", "")))[0] == J.PRE_TRAINING
    assert state_of(wf("Running", ("pre-train", "Succeeded", ""), ("train", "Running", "")))[0] == J.TRAINING
    assert state_of(wf("Running", ("train", "Succeeded", ""), ("post-train", "Pending", "")))[0] == J.POST_TRAINING
    assert state_of(wf("Succeeded")) == (J.SUCCEEDED, "")
    state, reason = state_of(wf("Failed", ("train", "Failed", "OOMKilled (exit code 137)"), message="child failed"))
    assert state == J.FAILED and reason == "the Argo workflow failed: train: OOMKilled (exit code 137)"


async def test_the_client_submits_follows_and_terminates_over_the_rest_api(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    seen: list[tuple[str, str, dict | None, str]] = []
    phases = iter(["Running", "Succeeded"])

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body, request.headers.get("authorization", "")))
        if request.method == "POST":
            argo_valid(hera_models.WorkflowCreateRequest, body)
            created = copy.deepcopy(body["workflow"])
            created["metadata"]["name"] = "mlmesh-training-abcde"
            return httpx.Response(200, json=created)
        if request.method == "GET":
            phase = next(phases)
            nodes = {"n": {"displayName": "train", "type": "Pod", "phase": "Running"}} if phase == "Running" else {}
            return httpx.Response(200, json={"status": {"phase": phase, "nodes": nodes}})
        return httpx.Response(200, json={})

    settings = ArgoSettings(server_url="https://argo.example:2746", namespace="ml-jobs", token_file=token,
                            poll_seconds=0.01)
    client = ArgoWorkflows(settings, transport=httpx.MockTransport(handler))
    try:
        name = await client.submit(JOB)
        states = [s async for s, _ in client.watch(name)]
        await client.stop(name)
    finally:
        await client.close()
    assert name == "mlmesh-training-abcde"
    assert states == [J.TRAINING, J.SUCCEEDED]
    assert [(m, p) for m, p, _, _ in seen] == [
        ("POST", "/api/v1/workflows/ml-jobs"),
        ("GET", "/api/v1/workflows/ml-jobs/mlmesh-training-abcde"),
        ("GET", "/api/v1/workflows/ml-jobs/mlmesh-training-abcde"),
        ("PUT", "/api/v1/workflows/ml-jobs/mlmesh-training-abcde/terminate"),
    ]
    assert {auth for *_, auth in seen} == {"Bearer s3cret"}


async def test_an_unconfigured_or_refusing_server_is_a_clear_error():
    from servers.common import errors

    client = ArgoWorkflows(ArgoSettings())
    with pytest.raises(errors.FailedPrecondition, match="MLMESH_TRAINER_ARGO__SERVER_URL"):
        await client.submit(JOB)
    await client.close()
    refusing = ArgoWorkflows(ArgoSettings(server_url="https://argo.example"), transport=httpx.MockTransport(
        lambda r: httpx.Response(403, json={"message": "workflows.argoproj.io is forbidden"})))
    with pytest.raises(errors.FailedPrecondition, match="403.*forbidden"):
        await refusing.submit(JOB)
    await refusing.close()
