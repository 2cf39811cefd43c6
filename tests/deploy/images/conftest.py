"""Fixtures that run the mesh from its images with podman (`make test-images`; `make images` first).

Every container uses the host's network on 127.0.0.1 with free ports, and sees the host's temporary
data dir at the same path, so certificates, keys and Envoy's rendered config are the files
`make up` would make, at paths valid inside and outside the containers. The servers get exactly the
environment `make up` gives them (servers.devstack's own `_server_env`)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CONTAINERS_CONF = REPO / "images" / "containers.conf"
PREFIX = "localhost/mlmesh"
VERSION = "0.1.0"
UID = 10001


def podman(*args: str, check: bool = True, timeout: float = 300, input: str | None = None):
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    out = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=timeout, input=input)
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} ... failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out


def image(name: str) -> str:
    return f"{PREFIX}/{name}:{VERSION}"


# Servers whose jobs need an environment of their own run from its image (k8s/generate.py ENV_IMAGES),
# with the worker Python the image's environment sets; the rest from ml (local jobs, workers) or mesh.
ENV_IMAGES = {"optimizer": "rl", "federation": "flower"}


def server_image(server) -> str:
    if server.name in ENV_IMAGES and podman("image", "exists", image(ENV_IMAGES[server.name]), check=False).returncode == 0:
        return ENV_IMAGES[server.name]
    return "ml" if server.ml or server.name in ("trainer", "translator") else "mesh"


@pytest.fixture(scope="session", autouse=True)
def _images_exist():
    missing = [n for n in ("mesh", "ml", "dev-postgres", "dev-chain")
               if podman("image", "exists", image(n), check=False).returncode != 0]
    if missing:
        pytest.fail(f"images {missing} are not built: run `make images` (make test-images does)")


def healthy(container: str) -> bool:
    """The image's own HEALTHCHECK, run on demand (podman schedules it with systemd timers, which this
    machine lacks)."""
    return podman("healthcheck", "run", container, check=False, timeout=60).returncode == 0


def wait_healthy(container: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        if state in ("exited", "stopped"):
            break
        if healthy(container):
            return
        time.sleep(2)
    logs = podman("logs", "--tail", "40", container, check=False)
    state = podman("inspect", "--format", "{{json .State}} restarts={{.RestartCount}}", container, check=False)
    raise AssertionError(f"{container} not healthy after {timeout:.0f}s: {state.stdout}\n"
                         f"{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


@dataclass
class PodmanStack:
    data_dir: Path
    envoy_port: int
    rpc_url: str
    containers: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    keys: object = None  # the token issuer's keys (servers.common.identity.Keys) Envoy trusts

    def run(self, name: str, img: str, argv: list[str], env: dict[str, str], volumes: list[str] = (),
            entrypoint: str | None = None) -> str:
        container = f"mlmesh-e2e-{name}-{self.data_dir.name[-8:]}"
        args = ["run", "-d", "--init", "--network", "host", "--name", container,
                "-v", f"{self.data_dir}:{self.data_dir}"]
        for volume in volumes:
            args += ["-v", volume]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        if entrypoint:
            args += ["--entrypoint", entrypoint]
        podman(*args, img, *argv)
        self.containers.append(container)
        return container

    def stop_all(self) -> dict[str, int]:
        """Stop in reverse order with SIGTERM (podman escalates to SIGKILL after 20 s); exit codes."""
        codes = {}
        for container in reversed(self.containers):
            podman("stop", "-t", "20", container, check=False, timeout=60)
            code = podman("inspect", "--format", "{{.State.ExitCode}}", container, check=False).stdout.strip()
            codes[container] = int(code) if code.lstrip("-").isdigit() else -1
        return codes

    def remove_all(self) -> None:
        for container in self.containers:
            podman("rm", "-f", container, check=False, timeout=60)


@pytest.fixture(scope="module")
def podman_stack(tmp_path_factory):
    from servers.common import identity
    from servers.devstack import procs
    from servers.devstack.__main__ import _server_env, envoy_upstreams, tls_env
    from servers.devstack.envoy import MESH_ROUTES, write_envoy_config
    from servers.devstack.envoy.render import UpstreamTls
    from servers.devstack.envoy.routes import HTTP_ROUTES
    from servers.devstack.mesh import SERVERS
    from servers.devstack.settings import DevstackSettings

    data_dir = tmp_path_factory.mktemp("podman-mesh")
    # Every port the devstack knows (gRPC, metrics, HTTP fronts, Envoy, PostgreSQL, Anvil): a free one.
    ports = {name: procs.free_port() for name in DevstackSettings.model_fields if name.endswith("_port")}
    s = DevstackSettings(data_dir=data_dir, **ports)
    keys = identity.ensure_keys(s.identity_dir)
    envoy_tls = tls_env(s, "envoy")  # makes the mesh CA and every component's certificate
    password = secrets.token_urlsafe(16)
    database_url = f"postgresql://mlmesh:{password}@127.0.0.1:{s.postgres_port}/mlmesh"
    rpc_url = f"http://127.0.0.1:{s.anvil_port}"
    for sub in ("postgres", "anvil", "run", "logs"):
        (data_dir / sub).mkdir(exist_ok=True)
    (s.run_dir / "endpoints.json").write_text(json.dumps({"rpc_url": rpc_url, "database_url": database_url}))
    config = write_envoy_config(
        data_dir / "envoy" / "envoy.yaml",
        upstreams=envoy_upstreams(s), routes=MESH_ROUTES, http_routes=HTTP_ROUTES,  # as `make up` routes
        listen_host="127.0.0.1", listen_port=s.envoy_port, admin_port=s.envoy_admin_port,
        jwks=identity.jwks(keys), upstream_tls=UpstreamTls(*(Path(envoy_tls[f"MLMESH_TLS_{k}_FILE"])
                                                             for k in ("CA", "CERT", "KEY"))))
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(data_dir)], check=True)
    os.chmod(data_dir, 0o755)

    stack = PodmanStack(data_dir=data_dir, envoy_port=s.envoy_port, rpc_url=rpc_url, keys=keys)
    try:
        pg = stack.run("postgres", image("dev-postgres"), [], {
            "POSTGRES_PASSWORD": password, "POSTGRES_PORT": str(s.postgres_port), "POSTGRES_LISTEN": "127.0.0.1",
            "MLMESH_HEALTHCHECK": f"tcp 127.0.0.1:{s.postgres_port}"},
            volumes=[f"{data_dir}/postgres:/var/lib/postgresql/data"])
        wait_healthy(pg, 90)
        chain = stack.run("chain", image("dev-chain"), ["--host", "127.0.0.1", "--port", str(s.anvil_port)],
                          {"MLMESH_HEALTHCHECK": f"tcp 127.0.0.1:{s.anvil_port}"},
                          volumes=[f"{data_dir}/anvil:/var/lib/anvil"])
        wait_healthy(chain, 60)
        for server in SERVERS:
            name = server_image(server)
            if podman("run", "--rm", "--network", "none", "--entrypoint", "test", image(name),
                      "-f", f"/app/servers/{server.name}/main.py", check=False).returncode != 0:
                continue  # a server added to the tree after the images were built (run `make images`)
            env = {"MLMESH_DATA_DIR": str(data_dir), **_server_env(s, server, database_url, rpc_url),
                   "MLMESH_HEALTHCHECK": f"grpc 127.0.0.1:{s.ports(server.name).grpc}"}
            python = "/opt/ml/bin/python" if server.ml else "/opt/mesh/bin/python3"
            container = stack.run(server.name, image(name),
                                  [python, "-m", f"servers.{server.name}.main"], env)
            wait_healthy(container, server.start_timeout + 60)
        envoy = stack.run("envoy", image("mesh"), ["-c", str(config), "--log-level", "warn"],
                          {"MLMESH_HEALTHCHECK": f"http http://127.0.0.1:{s.envoy_admin_port}/ready"},
                          entrypoint="/opt/mesh/bin/envoy")
        wait_healthy(envoy, 60)
        stack.env = {"MLMESH_DATA_DIR": str(data_dir), "MLMESH_ENVOY_PORT": str(s.envoy_port),
                     "MLMESH_TARGET": f"127.0.0.1:{s.envoy_port}"}
        yield stack
    finally:
        stack.stop_all()
        stack.remove_all()
        shutil.rmtree(data_dir, ignore_errors=True)


def check_front_door(base_url: str, keys, organization_id: str) -> None:
    """Requests through Envoy that cross every kind of route: a token is required; REST transcoded to
    gRPC (ListDatasets); the Registry's HTTP front (the seed's multipart /dataset, which stores the bytes,
    anchors a Dataset contract through the Ledger on the chain and writes PostgreSQL; then the seed's
    /contract read) and the Learner's (the Open Inference Protocol's REST health)."""
    import httpx

    from servers.common import identity

    auth = {"authorization": f"Bearer {identity.mint_token(keys, organization_id=organization_id)}"}
    org = {"organization_id": organization_id}
    with httpx.Client(base_url=base_url, timeout=120) as http:
        assert http.get("/v1/datasets", params=org).status_code == 401
        before = http.get("/v1/datasets", params=org, headers=auth)
        assert before.status_code == 200, before.text
        # A server's first lookup of a peer's name can fail on a loaded machine (seen with podman's
        # aardvark-dns: "DNS query cancelled"); the Registry then answers 503 UNAVAILABLE having stored
        # nothing, and a client tries again, as this does (and checks that nothing was left behind).
        for attempt in range(1, 7):
            up = http.post("/dataset", headers=auth, data={"metadata": json.dumps({"organization_id": organization_id})},
                           files={"dataset": ("tiny.csv", b"a,b,label\n1,2,0\n3,4,1\n", "text/csv")})
            if up.status_code != 503 or attempt == 6:
                break
            print(f"upload attempt {attempt}: 503 {up.text[:300]}")
            time.sleep(5 * attempt)
        assert up.status_code == 200, up.text
        dataset = up.json()
        assert dataset["contract_address"].startswith("0x"), dataset
        after = http.get("/v1/datasets", params=org, headers=auth).json()["datasets"]
        earlier = {d["dataset_id"] for d in before.json().get("datasets", [])}
        assert {d["dataset_id"] for d in after} == earlier | {dataset["dataset_id"]}, "one upload, one dataset"
        contract = http.get(f"/contract/{dataset['contract_address']}", headers=auth)
        assert contract.status_code == 200 and contract.json(), contract.text
        ready = http.get("/v2/health/ready", headers=auth)
        assert ready.status_code == 200, ready.text
