"""`podman kube play` of the rendered `dev` overlay (k8s/overlays/dev) from the images `make images`
built, far enough that every pod passes its liveness probe and Envoy serves requests.

What podman 4.3 cannot play is turned into what it can by tests/deploy/kube_play.py (its docstring
lists every change: Services become pod names on a podman network with DNS, StatefulSets become
pods with their claims, Secrets become podman secrets, cert-manager's issuance is the test's CA
acting on each Certificate's spec; NetworkPolicies, PDBs, HPAs, RBAC, the WorkflowTemplate and the
PodMonitor are not played and stay checked only by tests/deploy/test_k8s.py's schemas and policy).
Everything else -- images, commands, ConfigMaps (settings.env, Envoy's config and descriptor set),
volumes, securityContext, resources, the exec probes -- is the overlay's own, unchanged.

The pods are played one `podman kube play` each, the data stores first and Envoy last. A cluster
gets there by restarting what started too early; podman restarts too (restartPolicy Always), but
played in order no container needs to, so a restart here means a crash and fails the test.
Pod, secret and volume names are the overlay's, global to podman: one run at a time per machine."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.deploy import kube_play
from tests.deploy.images.conftest import check_front_door, image, podman, wait_healthy
from tests.deploy.test_k8s import render

ORG = "org-kube-play"
ENVOY_PORT = 8080
START_ORDER = ["postgres", "chain", "ledger", "registry", "trainer", "translator", "learner", "federation",
               "optimizer", "envoy"]


def issue(spec: dict, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> dict[str, bytes]:
    """What cert-manager's CA Issuer writes into spec.secretName for a Certificate: ca.crt, tls.crt, tls.key,
    the certificate carrying exactly the spec's names."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans = [x509.DNSName(n) for n in spec.get("dnsNames", [])]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.get("ipAddresses", [])]
    sans += [x509.UniformResourceIdentifier(u) for u in spec.get("uris", [])]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec["commonName"])]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {"ca.crt": ca.public_bytes(pem), "tls.crt": cert.public_bytes(pem),
            "tls.key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}


class KubePlay:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.network = f"mlmesh-kube-{uuid.uuid4().hex[:8]}"
        self.pods: list[str] = []
        self.volumes: list[str] = []
        self.secrets: list[str] = []

    def play(self, name: str, docs: list[dict], *args: str) -> None:
        path = self.tmp / f"{name}.yaml"
        path.write_text(kube_play.playable_yaml(docs))
        podman("kube", "play", "--network", self.network, "--build=false", *args, str(path), timeout=300)

    def secret(self, name: str, data: bytes) -> None:
        path = self.tmp / f"secret-{name}.json"
        path.write_bytes(data)
        podman("secret", "create", name, str(path))
        self.secrets.append(name)
        path.unlink()

    def address(self, pod: str) -> str:
        infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
        networks = json.loads(podman("inspect", "--format", "{{json .NetworkSettings.Networks}}", infra).stdout)
        return networks[self.network]["IPAddress"]

    def remove(self) -> None:
        for pod in reversed(self.pods):
            podman("pod", "rm", "-f", "-t", "20", pod, check=False, timeout=120)
        for volume in self.volumes:
            podman("volume", "rm", "-f", volume, check=False)
        for name in self.secrets:
            podman("secret", "rm", name, check=False)
        podman("network", "rm", "-f", self.network, check=False)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    from servers.common import identity
    from servers.common.tls import _make_ca

    tmp = tmp_path_factory.mktemp("kube-play")
    keys = identity.ensure_keys(tmp / "identity")
    jwks = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mlmesh-jwks"},
            "data": {"jwks.json": json.dumps(identity.jwks(keys))}}
    plan = kube_play.plan(render("k8s/overlays/dev"), extra_configmaps=[jwks])
    assert sorted(plan.pods) == sorted(START_ORDER), "a workload of the overlay is not started by this test"
    for pod in plan.pods.values():
        for doc in pod.docs:
            if doc["kind"] == "Pod":
                for container in doc["spec"]["containers"]:
                    name, _, tag = container["image"].rpartition(":")
                    assert podman("image", "exists", container["image"], check=False).returncode == 0, \
                        f"{container['image']} is not built: run `make images`"
                    assert name.startswith("localhost/mlmesh/") and tag == image("x").rsplit(":", 1)[1]
    taken = [f"pod {p.name}" for p in plan.pods.values() if podman("pod", "exists", p.name, check=False).returncode == 0]
    taken += [f"volume {v}" for v in kube_play.volumes_named(plan)
              if podman("volume", "exists", v, check=False).returncode == 0]
    taken += [f"secret {s}" for s in plan.mounted_secrets | plan.env_secrets
              if podman("secret", "inspect", s, check=False).returncode == 0]
    if taken:
        pytest.fail(f"{taken} exist already (another kube play run?); podman would reuse them: remove them first")

    # The Secrets the operator makes (docs/deploy.md) and those cert-manager would fill.
    password = secrets.token_hex(16)
    values = {
        "mlmesh-postgres": {"password": password.encode()},
        "mlmesh-database": {"url": f"postgresql://mlmesh:{password}@mlmesh-postgres:5432/mlmesh".encode()},
        "mlmesh-ledger-signer": {"signer.key": secrets.token_hex(32).encode()},
    }
    run = KubePlay(tmp)
    run.ca, run.ca_key = _make_ca(dt.datetime.now(dt.UTC))
    for secret_name, spec in plan.certificates.items():
        if not spec.get("isCA"):
            values[secret_name] = issue(spec, run.ca, run.ca_key)
    needed = plan.mounted_secrets | plan.env_secrets
    assert needed <= set(values), f"the overlay references Secrets this test does not make: {needed - set(values)}"

    try:
        podman("network", "create", run.network)
        for name in sorted(needed):
            run.secret(name, kube_play.secret_json(name, values[name], mounted=name in plan.mounted_secrets))
        run.volumes = kube_play.volumes_named(plan)
        run.play("claims", plan.claims)
        started = {}
        for component in START_ORDER:
            pod = plan.pods[component]
            t0 = time.monotonic()
            run.play(component, pod.docs)
            run.pods.append(pod.name)
            container = f"{pod.name}-{pod.docs[-1]['spec']['containers'][0]['name']}"
            wait_healthy(container, timeout=300)  # the liveness probe, as podman's health check
            started[component] = round(time.monotonic() - t0, 1)
        print(f"\nkube play: live after (s): {started}")
        yield run, plan, keys, f"http://{run.address(plan.pods['envoy'].name)}:{ENVOY_PORT}"
    finally:
        if os.environ.get("MLMESH_KUBE_PLAY_KEEP") == "1":  # for a look after a failure; remove by hand
            print(f"kept: pods {run.pods}, volumes {run.volumes}, secrets {run.secrets}, network {run.network}")
        else:
            run.remove()


def test_every_pod_runs_as_the_overlay_says(played):
    run, plan, _, _ = played
    for pod in plan.pods.values():
        spec = pod.docs[-1]["spec"]
        for c in spec["containers"]:
            container = f"{pod.name}-{c['name']}"
            assert podman("exec", container, "id", "-u").stdout.strip() == "10001", container
            inspect = json.loads(podman("inspect", container).stdout)[0]
            assert inspect["RestartCount"] == 0, f"{container} restarted {inspect['RestartCount']} times"
            probe = inspect["Config"]["Healthcheck"]["Test"]  # what wait_healthy ran: the liveness probe
            assert probe[1:1 + len(pod.liveness)] == pod.liveness, f"{container}: {probe}"
            assert inspect["HostConfig"]["ReadonlyRootfs"] is True, container
            assert inspect["HostConfig"]["Memory"] > 0, f"{container}: no memory limit"
            assert "no-new-privileges" in inspect["HostConfig"]["SecurityOpt"], container
            assert not inspect["HostConfig"].get("PortBindings"), f"{container} publishes host ports"
            touch = podman("exec", container, "touch", "/app-probe", check=False)
            assert touch.returncode != 0 and "Read-only" in touch.stderr, container


def test_each_pod_has_its_own_empty_dirs(played):
    """A file in one pod's /tmp and data dir (emptyDirs) is not in another's (podman would share
    same-named emptyDirs between pods; the adapter renames them)."""
    _, plan, _, _ = played
    ledger, trainer = (f"{plan.pods[c].name}-{c}" for c in ("ledger", "trainer"))
    for path in ("/tmp/kube-play-isolation", "/var/lib/mlmesh/kube-play-isolation"):
        podman("exec", ledger, "touch", path)
        assert podman("exec", ledger, "test", "-e", path, check=False).returncode == 0
        assert podman("exec", trainer, "test", "-e", path, check=False).returncode != 0, f"{path} is shared"


def test_envoy_serves_requests_through_the_front_door(played):
    _, _, keys, base = played
    check_front_door(base, keys, ORG)


def test_servers_admit_only_the_mesh_certificates(played):
    """Dialled at its pod's address under its Service name, the Registry serves a client holding a
    certificate of the mesh CA (as the Registry itself dialled mlmesh-ledger:50052 for the upload
    above) and refuses one without."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    run, plan, _, _ = played
    target = f"{run.address(plan.pods['registry'].name)}:50051"
    options = [("grpc.ssl_target_name_override", "mlmesh-registry")]
    client = issue({"commonName": "client", "uris": ["spiffe://mlmesh/client"]}, run.ca, run.ca_key)

    def check(credentials) -> str:
        with grpc.secure_channel(target, credentials, options=options) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            except grpc.RpcError as exc:
                return exc.code().name
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    assert check(grpc.ssl_channel_credentials(client["ca.crt"], client["tls.key"], client["tls.crt"])) == "SERVING"
    assert check(grpc.ssl_channel_credentials(client["ca.crt"])) == "UNAVAILABLE"


def test_the_servers_read_the_overlays_settings(played):
    """The servers' environment is the overlay's ConfigMaps as rendered (the dev patch's chain URL, the
    common TLS paths where the Secret volume is mounted)."""
    _, plan, _, _ = played
    env = podman("exec", f"{plan.pods['ledger'].name}-ledger", "env").stdout.splitlines()
    assert "MLMESH_LEDGER_RPC_URL=http://mlmesh-chain:8545" in env
    assert "MLMESH_TLS_CERT_FILE=/etc/mlmesh/tls/tls.crt" in env
