"""`python k8s/generate.py` (`make k8s`): write the generated part of k8s/ from the mesh's own tables.

One source of truth: the servers and whom they dial (`servers.devstack.mesh.SERVERS`), their ports
(`servers.common.endpoints`), Envoy's routes and config (`servers.devstack.envoy`, the renderer
`make up` uses). From them this writes

  k8s/base/<server>/    per server: ServiceAccount, Deployment (StatefulSet for the Learner),
                        Service (gRPC, metrics and the HTTP front of those with one: HTTP_PORTS),
                        settings ConfigMap (env file), NetworkPolicy, PodDisruptionBudget,
                        cert-manager Certificate, HPA for the stateless ones, and for the servers
                        whose jobs run as Argo Workflows (ARGO_JOB_SERVERS) the ReadWriteMany claim
                        of their work directory, which the workflows' pods mount too
  k8s/base/kustomization.yaml       the list of them
  k8s/base/envoy/mlmesh.binpb       the descriptor set Envoy's transcoder reads
  k8s/base/envoy/envoy.yaml, k8s/overlays/dev/envoy/envoy.yaml   Envoy's config (they differ in
                                    the token issuer only; production uses the base's)
  k8s/overlays/dev/postgres/networkpolicy.yaml   who may reach the database (servers with one)
  k8s/argo/federated-{fedpate,flare,tff}-workflowtemplate.yaml,
  k8s/argo/optimizer-training-workflowtemplate.yaml
                                    the job processes of the Federation (one per framework) and the
                                    Optimizer as Argo steps (the command from the servers' own launch code)

A new server in SERVERS gets its folder on the next run: adding one is running this.
tests/deploy/test_k8s.py fails when the committed files differ from a fresh run.
Everything else under k8s/ is written by hand (overlays, the training WorkflowTemplate and Argo RBAC,
monitoring, common).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parent
REPO = K8S.parent
sys.path.insert(0, str(REPO))

from servers.common.endpoints import ENVOY_ADMIN_PORT, ENVOY_PORT, HTTP_PORTS, PORTS  # noqa: E402
from servers.devstack.envoy.descriptors import DEFAULT_DESCRIPTOR, build_descriptor_set  # noqa: E402
from servers.devstack.envoy.render import UpstreamTls, dump_yaml, render_envoy_config  # noqa: E402
from servers.devstack.envoy.routes import HTTP_ROUTES, MESH_ROUTES, http_upstream, upstreams_of  # noqa: E402
from servers.devstack.mesh import SERVERS, Server  # noqa: E402

NAMESPACE = "mlmesh"
MESH_IMAGE = "mlmesh/mesh"  # overlays map these names to real references (kustomize `images:`)
ML_IMAGE = "mlmesh/ml"
# Servers whose jobs run in an environment of their own (images/rl, images/flower): the server runs on
# the mesh's Python in that image, its worker processes on the environment's (the setting names it).
ENV_IMAGES = {
    "optimizer": ("mlmesh/rl", {"MLMESH_OPTIMIZER_RL_PYTHON": "/opt/rl/bin/python"}),
    "federation": ("mlmesh/flower", {"MLMESH_FEDERATION_FLOWER_PYTHON": "/opt/flower/bin/python"}),
}
IMAGE_TAG = "0.1.0"
UID = 10001
TLS_DIR = "/etc/mlmesh/tls"
DATA_DIR = "/var/lib/mlmesh"
ENVOY_DIR = "/etc/envoy"
HEALTHCHECK = ["python3", "/app/images/healthcheck.py"]
MONITORING_NAMESPACE = "monitoring"
# Pods of the Argo training workflows (k8s/argo): their pre-/post-train steps call the Registry.
WORKFLOW_COMPONENT = "training-job"

# Servers whose own subprocesses need the ML environment (the Translator's conversion worker).
ML_WORKERS = {"translator"}
# Stateless: their state is in PostgreSQL and object storage, so they scale (HPA) and any replica
# may be drained. The others hold something per process: the Ledger signs with one nonce sequence,
# the Trainer watches its jobs in-process (one per database), the Learner keeps live models.
SCALABLE = {"registry", "translator"}
STATEFUL = {"learner"}  # a StatefulSet with its own volume
# Servers that start children (recipes, conversion workers): a shared PID namespace puts the pause
# container at PID 1, which reaps orphans the way `podman run --init` does.
SPAWNS = {"trainer", "translator"}
RESOURCES = {
    "default": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "translator": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    "learner": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "6Gi"}},
    "optimizer": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    "federation": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    "envoy": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
}
TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # the pod's service-account token
# Settings a server needs in the cluster beyond its ports and peers (overlays add the adapters').
EXTRA_SETTINGS = {
    "ledger": {"MLMESH_LEDGER_SIGNER_KEY_FILE": "/etc/mlmesh/ledger/signer.key"},
    "trainer": {
        "MLMESH_TRAINER_EXECUTOR": "argo",
        "MLMESH_TRAINER_ARGO__NAMESPACE": NAMESPACE,
        "MLMESH_TRAINER_ARGO__TOKEN_FILE": TOKEN_FILE,
        "MLMESH_TRAINER_ARGO__REGISTRY_TARGET": f"mlmesh-registry:{PORTS['registry'].grpc}",
        "MLMESH_TRAINER_ARGO__TRAINER_IMAGE": f"{MESH_IMAGE}:{IMAGE_TAG}",
        "MLMESH_TRAINER_ARGO__ML_IMAGE": f"{ML_IMAGE}:{IMAGE_TAG}",
    },
}
# Secrets a server reads as files: (volume name, Secret name, mount path). Values never live in git.
SECRET_FILES = {"ledger": [("signer", "mlmesh-ledger-signer", "/etc/mlmesh/ledger")]}
# Servers whose job processes run as Argo Workflows of their WorkflowTemplate (write_workflow_templates):
# MLMESH_<SERVER>_EXECUTOR=argo. The server's work dir is a ReadWriteMany claim that the workflow's pod
# mounts at the same path (the server writes the job's files, the step runs on them, the server reads
# its outputs); the overlays set each one's Argo Server URL, as the Trainer's.
ARGO_JOB_SERVERS = ("federation", "optimizer")


def work_claim(name: str) -> str:
    return f"mlmesh-{name}-work"


def argo_job_settings(name: str) -> dict[str, str]:
    prefix = f"MLMESH_{name.upper()}_"
    return {f"{prefix}EXECUTOR": "argo", f"{prefix}ARGO__NAMESPACE": NAMESPACE, f"{prefix}ARGO__TOKEN_FILE": TOKEN_FILE,
            f"{prefix}ARGO__IMAGE": f"{ENV_IMAGES[name][0]}:{IMAGE_TAG}", f"{prefix}ARGO__WORK_CLAIM": work_claim(name)}


# FLARE's and TFF's jobs run from their own images (JOB_IMAGES), which the server never runs.
EXTRA_SETTINGS["federation"] = {**argo_job_settings("federation"),
                                "MLMESH_FEDERATION_ARGO__FLARE_IMAGE": f"mlmesh/flare:{IMAGE_TAG}",
                                "MLMESH_FEDERATION_ARGO__TFF_IMAGE": f"mlmesh/tff:{IMAGE_TAG}"}
# The grid cache on the claim, where the training template's step has it too (the same environment).
EXTRA_SETTINGS["optimizer"] = {**argo_job_settings("optimizer"),
                               "MLMESH_OPTIMIZER_GRID_CACHE_DIR": f"{DATA_DIR}/optimizer/gridshift-cache"}
# Servers that talk to the Kubernetes API (they submit Argo Workflows with their token).
API_CLIENTS = {"trainer", *ARGO_JOB_SERVERS}

# The token issuer of each Envoy config. The base (and so production): an OIDC issuer's JWKS (a Keycloak
# realm; change KEYCLOAK and run `make k8s`); dev: a JWKS file from a ConfigMap the operator makes from
# their own key pair (docs/deploy.md).
KEYCLOAK = "https://keycloak.example.com/realms/mlmesh"
ISSUERS = {
    "base": {"jwks_uri": f"{KEYCLOAK}/protocol/openid-connect/certs", "issuer": KEYCLOAK},
    "overlays/dev": {"jwks_file": "/etc/mlmesh/jwks/jwks.json", "issuer": "mlmesh-local"},
}


def svc(name: str) -> str:
    return f"mlmesh-{name}"


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": svc(component), "app.kubernetes.io/component": component}


def selector(component: str) -> dict[str, str]:
    return {"matchLabels": {"app.kubernetes.io/component": component}}


@dataclass
class Written:
    files: dict[Path, str | bytes]

    def put(self, path: Path, content: str | dict | list) -> None:
        if not isinstance(content, str):
            docs = content if isinstance(content, list) else [content]
            content = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)
        self.files[path] = "# Generated by k8s/generate.py (`make k8s`) -- do not edit.\n" + content


def settings_env(server: Server) -> dict[str, str]:
    """The server's ConfigMap: what `make up` passes it, with cluster addresses."""
    prefix = f"MLMESH_{server.name.upper()}_"
    ports = PORTS[server.name]
    env = {
        f"{prefix}HOST": "0.0.0.0",
        f"{prefix}PORT": str(ports.grpc),
        f"{prefix}METRICS_HOST": "0.0.0.0",
        f"{prefix}METRICS_PORT": str(ports.metrics),
        **({f"{prefix}HTTP_PORT": str(HTTP_PORTS[server.name])} if server.http else {}),
        **{f"{prefix}{other.upper()}_TARGET": f"{svc(other)}:{PORTS[other].grpc}" for other in server.dials},
        **dict(server.env),
        **EXTRA_SETTINGS.get(server.name, {}),
        **(ENV_IMAGES[server.name][1] if server.name in ENV_IMAGES else {}),
        "MLMESH_HEALTHCHECK": f"grpc 127.0.0.1:{ports.grpc}",
    }
    return env


def probe(kind: str, target: str) -> dict[str, Any]:
    """Exec probes: the servers serve only mutual TLS, which a kubelet gRPC probe cannot speak."""
    command = {"exec": {"command": [*HEALTHCHECK, kind, target]}, "timeoutSeconds": 5}
    return command


def probes(kind: str, target: str, start_seconds: int) -> dict[str, Any]:
    return {
        "startupProbe": {**probe(kind, target), "periodSeconds": 5, "failureThreshold": max(6, start_seconds // 5)},
        "readinessProbe": {**probe(kind, target), "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {**probe(kind, target), "periodSeconds": 30, "failureThreshold": 3},
    }


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}}


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def tls_volume(component: str) -> dict[str, Any]:
    return {"name": "tls", "secret": {"secretName": f"mlmesh-tls-{component}", "defaultMode": 0o440}}


def server_pod(server: Server) -> dict[str, Any]:
    name = server.name
    ports = PORTS[name]
    ml = server.ml or name in ML_WORKERS
    image = f"{ENV_IMAGES[name][0] if name in ENV_IMAGES else ML_IMAGE if ml else MESH_IMAGE}:{IMAGE_TAG}"
    python = "/opt/ml/bin/python" if server.ml else "/opt/mesh/bin/python3"
    mounts = [{"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
              {"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    volumes = [tls_volume(name), {"name": "tmp", "emptyDir": {}}]
    if name not in STATEFUL:
        volumes.append({"name": "data", "emptyDir": {}})
    if name in ARGO_JOB_SERVERS:
        mounts.append({"name": "work", "mountPath": f"{DATA_DIR}/{name}"})
        volumes.append({"name": "work", "persistentVolumeClaim": {"claimName": work_claim(name)}})
    for volume, secret, path in SECRET_FILES.get(name, []):
        mounts.append({"name": volume, "mountPath": path, "readOnly": True})
        volumes.append({"name": volume, "secret": {"secretName": secret, "defaultMode": 0o440}})
    env = []
    if server.database:
        env.append({"name": "MLMESH_DATABASE_URL",
                    "valueFrom": {"secretKeyRef": {"name": "mlmesh-database", "key": "url"}}})
    container = {
        "name": name,
        "image": image,
        "command": [python, "-m", f"servers.{name}.main"],
        "envFrom": [{"configMapRef": {"name": "mlmesh-common"}}, {"configMapRef": {"name": svc(name)}}],
        "env": env,
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}
                  for port_name, port, _ in server_ports(server)],
        **probes("grpc", f"127.0.0.1:{ports.grpc}", int(server.start_timeout)),
        "resources": RESOURCES.get(name, RESOURCES["default"]),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    if not env:
        del container["env"]
    spec = {
        "serviceAccountName": svc(name),
        "automountServiceAccountToken": name in API_CLIENTS,
        "securityContext": pod_security(),
        # The server drains (health NOT_SERVING), then lets calls finish (grace_seconds): 10 + 1 + margin.
        "terminationGracePeriodSeconds": 20,
        "containers": [container],
        "volumes": volumes,
    }
    if name in SPAWNS:
        spec["shareProcessNamespace"] = True
    return spec


def workload(server: Server) -> dict[str, Any]:
    name = server.name
    template = {"metadata": {"labels": labels(name)}, "spec": server_pod(server)}
    meta = {"name": svc(name), "labels": labels(name)}
    if name in STATEFUL:
        return {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
            "spec": {
                "serviceName": svc(name), "replicas": 1, "selector": selector(name), "template": template,
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
                }],
            },
        }
    strategy = {"type": "RollingUpdate"} if name in SCALABLE else {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
        "spec": {"replicas": 2 if name in SCALABLE else 1, "selector": selector(name), "strategy": strategy,
                 "template": template},
    }


def server_ports(server: Server) -> list[tuple[str, int, str]]:
    """(name, port, appProtocol) of a server's container and Service: gRPC, metrics, and its HTTP front
    (mutual TLS like the gRPC port, so `https`) when it has one."""
    ports = PORTS[server.name]
    http = [("http", HTTP_PORTS[server.name], "https")] if server.http else []
    return [("grpc", ports.grpc, "grpc"), *http, ("metrics", ports.metrics, "http")]


def http_fronts() -> list[str]:
    """The servers whose HTTP front Envoy routes to (HTTP_ROUTES), in table order."""
    return list(dict.fromkeys(row.server for row in HTTP_ROUTES))


def service(name: str, ports: list[tuple[str, int, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": svc(name), "labels": labels(name)},
        "spec": {
            "selector": {"app.kubernetes.io/component": name},
            "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP",
                       "appProtocol": app} for port_name, port, app in ports],
        },
    }


def callers_of(name: str) -> list[str]:
    """Who may open the server's gRPC port: Envoy when the route table routes it, the servers
    that dial it, and the training workflows for the Registry."""
    routed = name in upstreams_of(MESH_ROUTES)
    callers = (["envoy"] if routed else []) + [s.name for s in SERVERS if name in s.dials]
    if name == "registry":
        callers.append(WORKFLOW_COMPONENT)
    return callers


def from_components(components: list[str], port: int) -> dict[str, Any]:
    return {
        "from": [{"podSelector": {"matchExpressions": [
            {"key": "app.kubernetes.io/component", "operator": "In", "values": sorted(components)}]}}],
        "ports": [{"protocol": "TCP", "port": port}],
    }


def network_policy(name: str, grpc_port: int, metrics_port: int | None, callers: list[str],
                   http_port: int | None = None) -> dict[str, Any]:
    """Ingress to the gRPC port from `callers`, to the HTTP front (if any) from Envoy only (nothing
    else calls it), to the metrics port from the monitoring namespace."""
    rules = [from_components(callers, grpc_port)]
    if http_port is not None:
        rules.append(from_components(["envoy"], http_port))
    if metrics_port is not None:
        rules.append({
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}],
            "ports": [{"protocol": "TCP", "port": metrics_port}],
        })
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": svc(name), "labels": labels(name)},
        "spec": {"podSelector": selector(name), "policyTypes": ["Ingress"], "ingress": rules},
    }


def pdb(name: str) -> dict[str, Any]:
    # Scaled servers keep one replica up; singletons may be evicted (a drain must not hang on them).
    budget = {"minAvailable": 1} if name in SCALABLE or name == "envoy" else {"maxUnavailable": 1}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": svc(name), "labels": labels(name)},
            "spec": {**budget, "selector": selector(name)}}


def hpa(name: str, kind: str = "Deployment") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": svc(name), "labels": labels(name)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": svc(name)},
            "minReplicas": 2, "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                          "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }


def certificate(component: str) -> dict[str, Any]:
    """cert-manager Certificate naming the component as servers.common.tls does: CN, SPIFFE URI SAN,
    the Service's DNS names, localhost and 127.0.0.1 (the exec probes dial 127.0.0.1)."""
    return {
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": f"mlmesh-tls-{component}", "labels": labels(component)},
        "spec": {
            "secretName": f"mlmesh-tls-{component}",
            "commonName": component,
            "dnsNames": [svc(component), f"{svc(component)}.{NAMESPACE}.svc", "localhost"],
            "ipAddresses": ["127.0.0.1"],
            "uris": [f"spiffe://mlmesh/{component}"],
            "duration": "8760h", "renewBefore": "720h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
            "issuerRef": {"name": "mlmesh-ca", "kind": "Issuer", "group": "cert-manager.io"},
        },
    }


def kustomization(resources: list[str], generators: list[dict] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                           "resources": resources}
    if generators:
        doc["configMapGenerator"] = generators
    return doc


def write_server(out: Written, server: Server) -> None:
    name = server.name
    folder = K8S / "base" / name
    ports = PORTS[name]
    docs = {
        "serviceaccount.yaml": {"apiVersion": "v1", "kind": "ServiceAccount",
                                "metadata": {"name": svc(name), "labels": labels(name)},
                                "automountServiceAccountToken": name in API_CLIENTS},
        "workload.yaml": workload(server),
        "service.yaml": service(name, server_ports(server)),
        "networkpolicy.yaml": network_policy(name, ports.grpc, ports.metrics, callers_of(name),
                                             HTTP_PORTS[name] if name in http_fronts() else None),
        "pdb.yaml": pdb(name),
        "certificate.yaml": certificate(name),
    }
    if name in SCALABLE:
        docs["hpa.yaml"] = hpa(name)
    if name in ARGO_JOB_SERVERS:
        docs["workclaim.yaml"] = {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": work_claim(name), "labels": labels(name)},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "20Gi"}}}}
    for file, doc in docs.items():
        out.put(folder / file, doc)
    out.files[folder / "settings.env"] = "".join(f"{k}={v}\n" for k, v in settings_env(server).items())
    out.put(folder / "kustomization.yaml", kustomization(
        sorted(docs), [{"name": svc(name), "envs": ["settings.env"]}]))


def envoy_config(issuer: dict[str, str], descriptor: Path) -> str:
    """Envoy's config from the renderer: every routed server by its Service name, mutual TLS with
    the cert-manager Secret's files, the descriptor set from the ConfigMap at /etc/envoy."""
    upstreams = {name: (svc(name), PORTS[name].grpc) for name in upstreams_of(MESH_ROUTES)}
    upstreams.update({http_upstream(name): (svc(name), HTTP_PORTS[name]) for name in http_fronts()})
    kwargs = {"jwks_uri": issuer.get("jwks_uri"), "jwks_file": issuer.get("jwks_file")}
    config = render_envoy_config(
        upstreams=upstreams, routes=MESH_ROUTES, http_routes=HTTP_ROUTES, descriptor_path=descriptor,
        listen_host="0.0.0.0", listen_port=ENVOY_PORT, admin_port=ENVOY_ADMIN_PORT,
        issuer=issuer["issuer"], audiences=("mlmesh",),
        upstream_tls=UpstreamTls(Path(f"{TLS_DIR}/ca.crt"), Path(f"{TLS_DIR}/tls.crt"), Path(f"{TLS_DIR}/tls.key")),
        **{k: v for k, v in kwargs.items() if v is not None},
    )
    text = dump_yaml(config)
    # The renderer writes the descriptor's path on this machine; in the pod it is the ConfigMap's.
    return text.replace(str(descriptor.resolve()), f"{ENVOY_DIR}/mlmesh.binpb")


def write_envoy(out: Written) -> None:
    folder = K8S / "base" / "envoy"
    with tempfile.TemporaryDirectory() as tmp:
        descriptor = build_descriptor_set(DEFAULT_DESCRIPTOR, Path(tmp) / "mlmesh.binpb")
        out.files[folder / "mlmesh.binpb"] = descriptor.read_bytes()
        for where, issuer in ISSUERS.items():
            out.files[K8S / where / "envoy" / "envoy.yaml"] = (
                "# Generated by k8s/generate.py from servers/devstack/envoy (the renderer `make up` uses) -- "
                "do not edit.\n" + envoy_config(issuer, descriptor))
    mounts = [{"name": "config", "mountPath": ENVOY_DIR, "readOnly": True},
              {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}]
    container = {
        "name": "envoy", "image": f"{MESH_IMAGE}:{IMAGE_TAG}",
        "command": ["/opt/mesh/bin/envoy", "-c", f"{ENVOY_DIR}/envoy.yaml", "--log-level", "info"],
        "env": [{"name": "MLMESH_HEALTHCHECK", "value": f"http http://127.0.0.1:{ENVOY_ADMIN_PORT}/ready"}],
        "ports": [{"name": "http", "containerPort": ENVOY_PORT, "protocol": "TCP"}],
        **probes("http", f"http://127.0.0.1:{ENVOY_ADMIN_PORT}/ready", 30),
        "resources": RESOURCES["envoy"], "securityContext": container_security(), "volumeMounts": mounts,
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": svc("envoy"), "labels": labels("envoy")},
        "spec": {"replicas": 2, "selector": selector("envoy"), "template": {
            "metadata": {"labels": labels("envoy")},
            "spec": {"serviceAccountName": svc("envoy"), "automountServiceAccountToken": False,
                     "securityContext": pod_security(), "terminationGracePeriodSeconds": 20,
                     "containers": [container],
                     "volumes": [{"name": "config", "configMap": {"name": svc("envoy")}}, tls_volume("envoy"),
                                 {"name": "tmp", "emptyDir": {}}]}}},
    }
    front_door = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": svc("envoy"), "labels": labels("envoy")},
        "spec": {"podSelector": selector("envoy"), "policyTypes": ["Ingress"],
                 "ingress": [{"ports": [{"protocol": "TCP", "port": ENVOY_PORT}]}]},
    }
    docs = {
        "serviceaccount.yaml": {"apiVersion": "v1", "kind": "ServiceAccount",
                                "metadata": {"name": svc("envoy"), "labels": labels("envoy")},
                                "automountServiceAccountToken": False},
        "deployment.yaml": deployment,
        # REST/JSON (HTTP/1.1) and native gRPC (h2c) on one port.
        "service.yaml": service("envoy", [("http", ENVOY_PORT, "http")]),
        "networkpolicy.yaml": front_door,
        "pdb.yaml": pdb("envoy"),
        "hpa.yaml": hpa("envoy"),
        "certificate.yaml": certificate("envoy"),
    }
    for file, doc in docs.items():
        out.put(folder / file, doc)
    out.put(folder / "kustomization.yaml", kustomization(
        sorted(docs), [{"name": svc("envoy"), "files": ["envoy.yaml", "mlmesh.binpb"]}]))


def write_database_policy(out: Written) -> None:
    users = sorted(s.name for s in SERVERS if s.database)
    out.put(K8S / "overlays" / "dev" / "postgres" / "networkpolicy.yaml",
            network_policy("postgres", 5432, None, users))
    ledgers = sorted(s.name for s in SERVERS if s.chain)
    out.put(K8S / "overlays" / "dev" / "chain" / "networkpolicy.yaml", network_policy("chain", 8545, None, ledgers))


# Argo WorkflowTemplates for the servers whose jobs are processes of their own. Each runs, as one
# step in the job's environment image, exactly the process the server starts locally (the command and
# environment come from the servers' own adapters below), in the job's directory on a claim the server
# shares (mounted at the server's own work dir, so the paths the server writes into the job's files
# hold in the step too). The server keeps what it does around the process: fetching the dataset,
# writing the job's files before, reading the outputs and registering the model after, and reading
# the step's stdout (its event lines) through the Argo Server's log API.
WORKFLOW_POD = "workflow-job"  # the component label of these workflow pods (they call no server)


def _step_template(*, name: str, component: str, description: str, image_param: str, image: str,
                   work_root: str, dir_param: str, command: list[str], env: dict[str, str],
                   working_dir: str) -> dict[str, Any]:
    params = [
        {"name": "job-id"},
        {"name": dir_param, "description": f"the job's directory, under {work_root}"},
        {"name": "time-limit-seconds", "value": "3600"},
        {"name": "memory-limit-bytes", "value": "4294967296"},
        {"name": image_param, "value": f"{image}:{IMAGE_TAG}"},
        {"name": "work-claim", "value": work_claim(component),
         "description": f"a ReadWriteMany claim the {component} server mounts at {work_root} too"},
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "mlmesh",
                                              "app.kubernetes.io/component": component},
                     "annotations": {"workflows.argoproj.io/description": description}},
        "spec": {
            "entrypoint": "run",
            "serviceAccountName": "mlmesh-training",
            "podMetadata": {"labels": {"app.kubernetes.io/component": WORKFLOW_POD, "app.kubernetes.io/part-of": "mlmesh"}},
            "securityContext": pod_security(),
            "arguments": {"parameters": params},
            "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": "{{workflow.parameters.work-claim}}"}},
                        {"name": "tmp", "emptyDir": {}}],
            "podGC": {"strategy": "OnPodSuccess"},
            "ttlStrategy": {"secondsAfterCompletion": 86400},
            "templates": [{
                "name": "run",
                "activeDeadlineSeconds": "{{workflow.parameters.time-limit-seconds}}",
                "container": {
                    "image": f"{{{{workflow.parameters.{image_param}}}}}",
                    "command": command,
                    "workingDir": working_dir,
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "volumeMounts": [{"name": "work", "mountPath": work_root}, {"name": "tmp", "mountPath": "/tmp"}],
                    "resources": {"requests": {"cpu": "1", "memory": "{{workflow.parameters.memory-limit-bytes}}"},
                                  "limits": {"memory": "{{workflow.parameters.memory-limit-bytes}}"}},
                    "securityContext": container_security(),
                },
            }],
        },
    }


def in_image(path: Path) -> str:
    """A path of this repository as the images have it (/app)."""
    return str(Path("/app") / Path(path).resolve().relative_to(REPO))


# The federated jobs' own environments (images/flare, images/tff): images holding only a framework's
# environment and its launcher, run as a workflow's step (the server runs from the flower image).
JOB_IMAGES = {"flare": "mlmesh/flare", "tff": "mlmesh/tff"}


def federated_job_templates() -> list[dict[str, Any]]:
    """Each framework's launcher (servers/federation/adapters/argo.py: FedPATE's in the flower image,
    FLARE's in the flare image, TFF's in the tff image), as the argo executor's `launch` and
    FederationCore start it: job.json in the job's directory, HOME and TMPDIR inside it, the
    framework's own environment variables."""
    from servers.federation.adapters import argo
    from servers.federation.adapters.frameworks import LocalFrameworks

    job_dir = "{{workflow.parameters.job-dir}}"
    images = {"flower": ENV_IMAGES["federation"][0], **JOB_IMAGES}
    local = LocalFrameworks(**{f"{env}_python": Path(f"/opt/{env}/bin/python") for env in images})
    executor = argo.ArgoFrameworks(local, runner=None)  # launch() needs no runner
    templates = []
    for framework, template in argo.TEMPLATES.items():
        launch = executor.launch(framework, Path(job_dir))
        command = [launch.argv[0], in_image(Path(launch.argv[1])), *launch.argv[2:]]
        env = {**launch.env, "HOME": f"{job_dir}/home", "TMPDIR": f"{job_dir}/tmp", "PYTHONUNBUFFERED": "1",
               "MLMESH_FEDERATION_JOB": f"{job_dir}/job.json"}
        templates.append(_step_template(
            name=template.name, component="federation", image_param=template.image_parameter,
            image=images[template.environment], work_root=f"{DATA_DIR}/federation", dir_param="job-dir",
            command=command, env=env, working_dir=job_dir, description=FEDERATED_DESCRIPTIONS[framework.value]))
    return templates


FEDERATED_DESCRIPTIONS = {
    "fedpate": "One FedPATE job's launcher (Flower's deployment engine: SuperLink, SuperExec and one SuperNode per "
               "teacher, all in the pod on 127.0.0.1), submitted by the Federation server, which prepares the job's "
               "directory and registers the student.",
    "flare": "One NVIDIA FLARE job's launcher (FLARE's simulator: its server and client processes, all in the pod), "
             "submitted by the Federation server, which prepares the job's directory and registers the model.",
    "tff": "One TensorFlow Federated DP-FedAvg job (TFF's simulation and its C++ worker, in the pod's network, which "
           "the namespace's default-deny ingress policy closes), submitted by the Federation server, which prepares "
           "the job's directory and registers the model.",
}


# The worker's command line and environment, as servers/optimizer/adapters/worker_runner.py runs them
# (tests/deploy/test_k8s.py compares the two).
def optimizer_training_template() -> dict[str, Any]:
    work = "{{workflow.parameters.work-dir}}"
    rl_python = ENV_IMAGES["optimizer"][1]["MLMESH_OPTIMIZER_RL_PYTHON"]
    command = [rl_python, "-m", "servers.optimizer.worker", "train", "--spec", f"{work}/spec.json", "--out", f"{work}/out"]
    env = {"HOME": work, "PYTHONPATH": "/app", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
           "MPLCONFIGDIR": f"{work}/.matplotlib", "MLMESH_GRIDSHIFT_CACHE": f"{DATA_DIR}/optimizer/gridshift-cache"}
    return _step_template(
        name="mlmesh-optimizer-training", component="optimizer", image_param="rl-image",
        image=ENV_IMAGES["optimizer"][0], work_root=f"{DATA_DIR}/optimizer", dir_param="work-dir",
        command=command, env=env, working_dir="/app",
        description="One agent's training (Stable-Baselines3 on mlmesh/GridShift-v0), submitted by the Optimizer "
                    "server, which writes spec.json and stores the policy it leaves in out/.")


def write_workflow_templates(out: Written) -> None:
    for template in federated_job_templates():
        out.put(K8S / "argo" / f"{template['metadata']['name'].removeprefix('mlmesh-')}-workflowtemplate.yaml", template)
    out.put(K8S / "argo" / "optimizer-training-workflowtemplate.yaml", optimizer_training_template())


def generate() -> dict[Path, str]:
    out = Written({})
    for server in SERVERS:
        write_server(out, server)
    write_envoy(out)
    write_database_policy(out)
    write_workflow_templates(out)
    resources = ["namespace.yaml", "common", *(s.name for s in SERVERS), "envoy", "../argo", "../monitoring"]
    out.put(K8S / "base" / "kustomization.yaml", {
        **kustomization(resources),
        "namespace": NAMESPACE,
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "mlmesh", "app.kubernetes.io/version": IMAGE_TAG},
                    "includeSelectors": False, "includeTemplates": True}],
    })
    return out.files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python k8s/generate.py", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if a generated file differs from k8s/ (no writes)")
    args = p.parse_args(argv)
    files = generate()
    stale = [path for path, content in files.items()
             if not path.exists() or (path.read_bytes() if isinstance(content, bytes) else path.read_text()) != content]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(REPO)}", file=sys.stderr)
        if stale:
            print("k8s/ is stale: run `make k8s` and commit it", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        content = files[path]
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
