"""The adapter that turns the rendered `dev` overlay into what `podman kube play` runs
(tests/deploy/kube_play.py), checked without podman: what it keeps, renames, drops and refuses.
The run itself is tests/deploy/images/test_kube_play.py (`make test-images`)."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from tests.deploy import kube_play
from tests.deploy.test_k8s import by_kind, render

JWKS = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mlmesh-jwks"}, "data": {"jwks.json": "{}"}}


@pytest.fixture(scope="module")
def dev() -> list[dict]:
    return render("k8s/overlays/dev")


def test_every_workload_becomes_one_pod_named_after_its_service(dev):
    plan = kube_play.plan(dev, [JWKS])
    services = by_kind(dev, "Service")
    workloads = [d for d in dev if d["kind"] in kube_play.WORKLOADS]
    assert len(plan.pods) == len(workloads)
    for pod in plan.pods.values():
        doc = pod.docs[-1]
        assert doc["kind"] == "Pod" and doc["metadata"]["name"] in services
        selector = services[pod.name]["spec"]["selector"]
        assert selector.items() <= doc["metadata"]["labels"].items()
        configmaps = {d["metadata"]["name"] for d in pod.docs[:-1]}
        for container in doc["spec"]["containers"]:
            assert {e["configMapRef"]["name"] for e in container.get("envFrom", [])} <= configmaps
            assert "ports" not in container, "podman would publish them on the host"
    assert plan.one_of == {"Deployment/mlmesh-envoy": 2}


def test_statefulset_claims_and_secrets(dev):
    plan = kube_play.plan(dev, [JWKS])
    claims = {c["metadata"]["name"] for c in plan.claims}
    assert {"data-mlmesh-learner-0", "data-mlmesh-postgres-0", "data-mlmesh-chain-0", "mlmesh-registry-data"} <= claims
    learner = plan.pods["learner"].docs[-1]["spec"]
    data = next(v for v in learner["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == "data-mlmesh-learner-0"
    assert all(v["secret"]["optional"] is False for p in plan.pods.values()
               for v in p.docs[-1]["spec"]["volumes"] if "secret" in v)
    assert plan.env_secrets == {"mlmesh-database"}
    assert {"mlmesh-postgres", "mlmesh-ledger-signer", "mlmesh-tls-registry"} <= plan.mounted_secrets
    assert set(plan.certificates) >= {f"mlmesh-tls-{c}" for c in plan.pods if c not in ("postgres", "chain")}


def test_empty_dirs_are_per_pod_and_unmodelled_kinds_are_listed(dev):
    plan = kube_play.plan(dev, [JWKS])
    names = [v["name"] for p in plan.pods.values() for v in p.docs[-1]["spec"]["volumes"] if "emptyDir" in v]
    assert len(names) == len(set(names)) and all(n.startswith("mlmesh-") for n in names)
    for pod in plan.pods.values():
        spec = pod.docs[-1]["spec"]
        declared = {v["name"] for v in spec["volumes"]}
        assert all(m["name"] in declared for c in spec["containers"] for m in c.get("volumeMounts", []))
    for kind in ("Service", "NetworkPolicy", "PodDisruptionBudget", "Certificate", "WorkflowTemplate", "RoleBinding"):
        assert plan.dropped[kind], kind
    assert set(kube_play.volumes_named(plan)) >= set(names) | {"mlmesh-jwks"}


def test_what_the_adapter_cannot_model_is_refused(dev):
    docs = copy.deepcopy(dev)
    service = by_kind(docs, "Service")["mlmesh-registry"]
    service["spec"]["ports"][0]["port"] = 443  # a Service port that differs from its container's
    with pytest.raises(kube_play.Unplayable, match="kube-proxy"):
        kube_play.plan(docs, [JWKS])
    with pytest.raises(kube_play.Unplayable, match="mlmesh-jwks"):
        kube_play.plan(dev)  # the operator's ConfigMap is missing
    with pytest.raises(kube_play.Unplayable, match="CronJob"):
        kube_play.plan([*dev, {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"}}], [JWKS])


def test_secret_formats_podman_reads():
    env = json.loads(kube_play.secret_json("s", {"url": b"postgresql://x"}, mounted=False))
    assert base64.b64decode(env["url"]) == b"postgresql://x"
    mounted = json.loads(kube_play.secret_json("s", {"tls.key": b"-----BEGIN"}, mounted=True))
    assert mounted["kind"] == "Secret" and mounted["data"] == {"tls.key": "-----BEGIN"}
