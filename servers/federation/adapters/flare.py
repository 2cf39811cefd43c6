"""NVIDIA FLARE jobs as local processes: the launcher (`servers/federation/apps/flare/
launch_flare.py`) runs in FLARE's own virtualenv (`.venv-flare`, `make flare-venv`) and drives
FLARE's simulator (SimEnv) with the job's directory as FLARE's workspace, HOME and TMPDIR (the
server sets those), so nothing lands in ~/.nvflare or /tmp. In real mode the same launcher submits
the job to a provisioned FLARE server with its admin kit (`apps/flare/real_flare.py`); `abort`
aborts that FLARE job when the mlmesh job is cancelled, fails, or is found by a restarted server.
Provisioned kits carry FLARE's homomorphic-encryption contexts (HEBuilder), which jobs with
`flare.homomorphic_encryption` use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil

from servers.common.processes import LocalProcessRunner
from servers.federation.domain.ports import Launch

LAUNCHER = Path(__file__).resolve().parents[1] / "apps" / "flare" / "launch_flare.py"
REAL = LAUNCHER.with_name("real_flare.py")
ABORT_TIMEOUT = 90.0
HOST = "127.0.0.1"
log = logging.getLogger("mlmesh.federation.flare")
ADMIN = "admin@mlmesh.local"  # the project admin: the Federation server itself (its kit never leaves it)
BUILDERS = [
    {"path": "nvflare.lighter.impl.workspace.WorkspaceBuilder", "args": {"template_file": ["master_template.yml"]}},
    {"path": "nvflare.lighter.impl.static_file.StaticFileBuilder", "args": {"config_folder": "config"}},
    {"path": "nvflare.lighter.impl.cert.CertBuilder"},
    # tenseal CKKS contexts for jobs with homomorphic encryption: the server's kit gets one without
    # the secret key, each client's one with it. Before SignatureBuilder, which signs them (FLARE
    # loads a context in secure mode only if signed).
    {"path": "nvflare.lighter.impl.he.HEBuilder"},
    {"path": "nvflare.lighter.impl.signature.SignatureBuilder"},
]


def unavailable(flare_python: Path | None) -> str:
    """"" when FLARE jobs can run here, else why not."""
    if flare_python is None or not flare_python.exists():
        return f"the NVIDIA FLARE environment is missing ({flare_python}; make flare-venv)"
    if not LAUNCHER.exists():
        return f"the FLARE launcher is missing ({LAUNCHER})"
    return ""


def launch(flare_python: Path, job_dir: Path) -> Launch:
    return Launch(argv=[str(flare_python), str(LAUNCHER), str(job_dir / "job.json")], env={})


async def abort(flare_python: Path, job_dir: Path) -> None:
    """Aborts the FLARE job a real-mode run submitted (recorded in `<job dir>/flare_job_id`)
    through the admin API; logs, never raises."""
    if not (job_dir / "flare_job_id").exists() or not (job_dir / "job.json").exists():
        return
    proc = await asyncio.create_subprocess_exec(
        str(flare_python), str(REAL), "abort", str(job_dir / "job.json"), cwd=job_dir,
        env={"PATH": "/usr/bin:/bin", "HOME": str(job_dir / "home"), "TMPDIR": str(job_dir / "tmp"), "LANG": "C.UTF-8"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), ABORT_TIMEOUT)
    except TimeoutError:
        log.warning("aborting the FLARE job of %s took over %.0f s; gave up", job_dir.name, ABORT_TIMEOUT)
        return
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    said = out.decode(errors="replace").strip()
    if proc.returncode != 0:
        log.warning("aborting the FLARE job of %s failed: %s", job_dir.name, said[-500:])
    elif said:
        log.info("job %s: %s", job_dir.name, said.splitlines()[-1][:500])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


class LocalFlareHosting:
    """Implements `domain.flare_servers.FlareHosting` with FLARE's own provisioner (`nvflare
    provision`) and the server from its startup kit, a process group of its own recorded in
    `server.pid` (killed by `stop`, and by the restart recovery).

    The project's server participant is named `localhost`, which makes FLARE bind 127.0.0.1;
    its ports are free ports picked at provisioning. HOME is the server's directory (FLARE would
    write ~/.nvflare otherwise)."""

    def __init__(self, flare_python: Path | None, *, start_timeout: float = 120.0):
        self.flare_python = flare_python
        self.start_timeout = start_timeout
        self._runner = LocalProcessRunner(what="the FLARE server")

    def available(self) -> str:
        return unavailable(self.flare_python)

    def _env(self, server_dir: Path) -> dict[str, str]:
        assert self.flare_python is not None
        home = server_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {"PATH": os.pathsep.join([str(self.flare_python.parent), "/usr/bin", "/bin"]), "HOME": str(home),
                "TMPDIR": str(home), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}

    async def provision(self, server_dir: Path, project_name: str, client_names: tuple[str, ...]) -> None:
        assert self.flare_python is not None
        server_dir.mkdir(parents=True, exist_ok=True)
        fed_port, admin_port = _free_port(), _free_port()
        participants = [{"name": "localhost", "type": "server", "org": "mlmesh", "fed_learn_port": fed_port,
                         "admin_port": admin_port}]
        participants += [{"name": name, "type": "client", "org": "mlmesh"} for name in client_names]
        participants.append({"name": ADMIN, "type": "admin", "org": "mlmesh", "role": "project_admin"})
        project = {"api_version": 3, "name": project_name, "description": "provisioned by the mlmesh Federation server",
                   "participants": participants, "builders": BUILDERS}
        # JSON is YAML: FLARE's provisioner reads this file with its YAML loader.
        (server_dir / "project.yml").write_text(json.dumps(project, indent=1))
        proc = await asyncio.create_subprocess_exec(
            str(self.flare_python.parent / "nvflare"), "provision", "-p", str(server_dir / "project.yml"), "-w",
            str(server_dir / "provisioned"), "--force", cwd=server_dir, env=self._env(server_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0 or not (self._kits(server_dir) / "localhost" / "startup").is_dir():
            tail = out.decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"nvflare provision failed (status {proc.returncode}): {' / '.join(tail)}")
        (server_dir / "ports.json").write_text(json.dumps({"fed_learn_port": fed_port, "admin_port": admin_port}))

    @staticmethod
    def _kits(server_dir: Path) -> Path:
        return server_dir / "provisioned" / json.loads((server_dir / "project.yml").read_text())["name"] / "prod_00"

    async def start(self, server_dir: Path) -> str:
        kit = self._kits(server_dir) / "localhost"
        port = json.loads((server_dir / "ports.json").read_text())["fed_learn_port"]
        log_file = (server_dir / "server.log").open("ab")
        # What the kit's sub_start.sh runs, without its restart loop.
        proc = subprocess.Popen(
            [str(self.flare_python), "-u", "-m", "nvflare.private.fed.app.server.server_train", "-m", str(kit), "-s",
             "fed_server.json", "--set", "secure_train=true", "org=mlmesh", "config_folder=config"],
            cwd=kit, env=self._env(server_dir), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        log_file.close()
        (server_dir / "server.pid").write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()}")
        deadline = time.monotonic() + self.start_timeout
        while not _listening(port):
            if proc.poll() is not None:
                tail = (server_dir / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"the server exited with status {proc.returncode}: {' / '.join(tail)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not listen on {HOST}:{port} within {self.start_timeout:.0f} s")
            await asyncio.sleep(0.2)
        return f"{HOST}:{port}"

    async def stop(self, server_dir: Path) -> None:
        pid_file = server_dir / "server.pid"
        if pid_file.exists():
            await asyncio.to_thread(self._runner.kill_leftover, pid_file)
            pid_file.unlink(missing_ok=True)

    def admin_kit(self, server_dir: Path) -> Path:
        return self._kits(server_dir) / ADMIN

    def kit(self, server_dir: Path, client_name: str) -> Path:
        archive = server_dir / "kits" / f"{client_name}.zip"
        if not archive.exists():
            archive.parent.mkdir(parents=True, exist_ok=True)
            made = shutil.make_archive(str(archive.with_suffix(".tmp")), "zip", self._kits(server_dir), client_name)
            os.replace(made, archive)
        return archive
