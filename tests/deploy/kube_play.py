"""The adapter between the rendered `dev` overlay and what `podman kube play` (podman 4.3) can run.

podman 4.3 plays Pods, Deployments, PersistentVolumeClaims and ConfigMaps (with `configMap` and
`secret` volumes, `secretKeyRef` env from podman secrets, the liveness probe as the container's health
check, resources, the container securityContext, a shared PID namespace). Everything else in the
overlay it cannot model, so this module turns the rendered objects into what it accepts, and says
what it changed (`Plan`):

- Workloads: every Deployment and StatefulSet becomes one Pod named after the Service that selects
  it (one replica: the dev overlay runs one of each server; Envoy's second replica is not played). On the podman network the test makes
  (netavark + aardvark-dns), a pod's name resolves to its address, so `mlmesh-registry:50051` in the
  ConfigMaps and Envoy's config reaches the pod as a ClusterIP Service would: this is how Services
  are modelled, and why each Service's port must equal its target container port (checked here;
  there is no kube-proxy to translate one into the other).
- A StatefulSet's volumeClaimTemplates become PersistentVolumeClaims named as Kubernetes names them
  (`<claim>-<statefulset>-0`), i.e. podman named volumes.
- `secret` volumes get `optional: false` (podman 4.3 dereferences the unset field and crashes).
- Container `ports` are removed (after the Service check above): podman 4.3 publishes each one on
  the host's every interface as if it were a hostPort, which Kubernetes never does and which would
  collide with `make up`'s fixed ports. The pods are reached at their addresses on the network.
- emptyDir volumes are renamed `<pod>-<volume>`: podman 4.3 makes an emptyDir a volume named after
  it, which every pod with an emptyDir of that name (`tmp`, `data`) would otherwise share.
- Secrets are not objects podman plays: the test creates each Secret the pods reference as a podman
  secret (`secret_json`: podman 4.3 reads env and volume secrets in two different formats); those the cert-manager Certificates would fill are issued by the test's
  own CA from each Certificate's spec (names, SPIFFE URI, IP addresses), as cert-manager's CA
  Issuer would.
- Dropped, because podman has nothing that runs them (checked only by schema and the policy tests):
  Namespace, Service (modelled as above), NetworkPolicy (every pod can reach every other), PDB,
  HPA, ServiceAccount, Role, RoleBinding, cert-manager Certificate and Issuer, Argo
  WorkflowTemplate, PodMonitor. Readiness and startup probes are ignored by podman; the test runs
  each liveness probe (podman's health check) itself, as nothing schedules it without systemd.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from typing import Any

PLAYABLE = {"ConfigMap", "PersistentVolumeClaim"}
WORKLOADS = {"Deployment", "StatefulSet"}
NOT_MODELLED = {"Namespace", "Service", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                "ServiceAccount", "Role", "RoleBinding", "Certificate", "Issuer", "WorkflowTemplate", "PodMonitor"}


class Unplayable(ValueError):
    """The rendered objects hold something this adapter cannot turn into what podman plays."""


@dataclass
class PlayPod:
    name: str  # the Service's name, which the pod answers to on the podman network
    source: str  # e.g. "StatefulSet/mlmesh-learner"
    component: str
    docs: list[dict]  # what one `podman kube play` gets: the ConfigMaps the pod reads, then the Pod
    liveness: list[str]  # the liveness probe's command (podman's health check)


@dataclass
class Plan:
    pods: dict[str, PlayPod]  # by component
    claims: list[dict]  # PersistentVolumeClaims (the overlay's and the StatefulSets' templates)
    mounted_secrets: set[str] = field(default_factory=set)  # Secrets the pods mount as volumes
    env_secrets: set[str] = field(default_factory=set)  # Secrets the pods read with secretKeyRef
    certificates: dict[str, dict] = field(default_factory=dict)  # Secret name -> cert-manager Certificate spec
    dropped: dict[str, list[str]] = field(default_factory=dict)  # kind -> names podman does not model
    one_of: dict[str, int] = field(default_factory=dict)  # workload -> its replicas, of which one is played


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _service_for(template: dict, services: list[dict], source: str) -> dict:
    labels = template["metadata"].get("labels", {})
    matching = [s for s in services if _selects(s["spec"].get("selector", {}), labels)]
    if len(matching) != 1:
        raise Unplayable(f"{source}: {len(matching)} Services select it; podman can model exactly one (its pod's name)")
    service = matching[0]
    ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        number = ports.get(target) if isinstance(target, str) else target
        if number != port["port"]:
            raise Unplayable(f"Service {service['metadata']['name']} port {port['port']} targets {target!r} "
                             f"({number}): without kube-proxy the pod must listen on the Service's port")
    return service


def _pod(doc: dict, service: dict, claims: list[dict]) -> dict:
    name = doc["metadata"]["name"]
    template = copy.deepcopy(doc["spec"]["template"])
    spec = template["spec"]
    volumes = spec.setdefault("volumes", [])
    for claim in doc["spec"].get("volumeClaimTemplates", []):
        claim_name = f"{claim['metadata']['name']}-{name}-0"
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": claim_name}, "spec": copy.deepcopy(claim["spec"])})
        volumes.append({"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
    pod_name = service["metadata"]["name"]
    renamed = {}
    for volume in volumes:
        if "secret" in volume:
            volume["secret"]["optional"] = False
        if "emptyDir" in volume:
            renamed[volume["name"]] = volume["name"] = f"{pod_name}-{volume['name']}"
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
        container.pop("ports", None)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "labels": template["metadata"].get("labels", {})},
            "spec": spec}


def _configmaps_read(spec: dict) -> list[str]:
    names = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
    for container in spec["containers"]:
        names += [e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e]
    return list(dict.fromkeys(names))


def plan(docs: list[dict], extra_configmaps: list[dict] = ()) -> Plan:
    """What to play for `docs` (the rendered overlay). `extra_configmaps`: ConfigMaps the overlay
    references but leaves to the operator (the dev overlay's mlmesh-jwks)."""
    configmaps = {d["metadata"]["name"]: d for d in [*docs, *extra_configmaps] if d["kind"] == "ConfigMap"}
    services = [d for d in docs if d["kind"] == "Service"]
    result = Plan(pods={}, claims=[d for d in docs if d["kind"] == "PersistentVolumeClaim"])
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in NOT_MODELLED:
            result.dropped.setdefault(kind, []).append(name)
            if kind == "Certificate":
                result.certificates[doc["spec"]["secretName"]] = doc["spec"]
        elif kind not in WORKLOADS | PLAYABLE:
            raise Unplayable(f"{kind}/{name}: neither played by podman 4.3 nor a kind this adapter knows to drop")
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        source = f"{doc['kind']}/{doc['metadata']['name']}"
        service = _service_for(doc["spec"]["template"], services, source)
        pod = _pod(doc, service, result.claims)
        if doc["spec"].get("replicas", 1) != 1:
            result.one_of[source] = doc["spec"]["replicas"]
        spec = pod["spec"]
        missing = [n for n in _configmaps_read(spec) if n not in configmaps]
        if missing:
            raise Unplayable(f"{source} reads ConfigMaps {missing}, which are not given")
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                result.mounted_secrets.add(volume["secret"]["secretName"])
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    result.env_secrets.add(ref["name"])
        both = result.mounted_secrets & result.env_secrets
        if both:
            raise Unplayable(f"Secrets {sorted(both)} are both mounted and read as env: podman 4.3 decodes one "
                             "and not the other (see secret_json)")
        component = pod["metadata"]["labels"]["app.kubernetes.io/component"]
        liveness = spec["containers"][0]["livenessProbe"]["exec"]["command"]
        result.pods[component] = PlayPod(
            name=pod["metadata"]["name"], source=source, component=component, liveness=liveness,
            docs=[configmaps[n] for n in _configmaps_read(spec)] + [pod])
    return result


def secret_json(name: str, values: dict[str, bytes], *, mounted: bool) -> bytes:
    """A Kubernetes Secret as the podman secret `podman kube play` (4.3) reads, which differs by use:
    for env (secretKeyRef) a JSON object of key -> base64 value, which it decodes; for a `secret`
    volume a Secret document whose `data` it writes to the files as they are, undecoded -- so a
    mounted Secret's values go in as plain text."""
    if mounted:
        return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                           "data": {k: v.decode() for k, v in values.items()}}).encode()
    return json.dumps({k: base64.b64encode(v).decode() for k, v in values.items()}).encode()


def volumes_named(plan: Plan) -> list[str]:
    """The podman named volumes `kube play` makes: the claims, one per Secret or ConfigMap a pod
    mounts, named after it, and the emptyDirs. They outlive the pods, and a later play reuses one that exists with
    its old contents, so a run must start without them and remove them."""
    names = [c["metadata"]["name"] for c in plan.claims] + sorted(plan.mounted_secrets)
    for pod in plan.pods.values():
        volumes = pod.docs[-1]["spec"].get("volumes", [])
        names += [v["configMap"]["name"] for v in volumes if "configMap" in v]
        names += [v["name"] for v in volumes if "emptyDir" in v]
    return list(dict.fromkeys(names))


def playable_yaml(docs: list[dict[str, Any]]) -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
