"""Start, find and stop the long-running processes of a local mesh.

Every process runs in its own session (setsid), writes its output to a log file
and is recorded in a pid file under `<data_dir>/run/`, so `make down` stops exactly
the processes `make up` started and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class StartError(RuntimeError):
    """A process did not come up; the message says which and where its log is."""


@dataclass
class Proc:
    """A process started by `start`."""

    name: str
    pid: int
    log_path: Path
    popen: subprocess.Popen | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid)

    def tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split(" ", 1)[0] != "Z"
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for processes that cannot bind port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pid_dir: Path | None = None,
) -> Proc:
    """Start `argv` in its own session with output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    proc = Proc(name=name, pid=popen.pid, log_path=log_path, popen=popen)
    if pid_dir is not None:
        pid_dir.mkdir(parents=True, exist_ok=True)
        (pid_dir / f"{name}.pid").write_text(str(popen.pid))
    return proc


def wait_until(
    proc: Proc, ready: Callable[[], bool], *, timeout: float = 60.0, what: str = "ready"
) -> None:
    """Poll `ready` until it is true; fail with the process's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartError(f"{proc.name} exited before it was {what}; log {proc.log_path}:\n{proc.tail()}")
        if ready():
            return
        time.sleep(0.1)
    raise StartError(f"{proc.name} was not {what} after {timeout:.0f}s; log {proc.log_path}:\n{proc.tail()}")


def stop(proc_or_pid: Proc | int, *, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to the process group, wait, then SIGKILL what is left."""
    pid = proc_or_pid.pid if isinstance(proc_or_pid, Proc) else proc_or_pid
    popen = proc_or_pid.popen if isinstance(proc_or_pid, Proc) else None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None:
            if popen.poll() is not None:
                return
        elif not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(5)


def stop_pidfile(pid_file: Path, *, timeout: float = 20.0) -> bool:
    """Stop the process recorded in `pid_file` (if it still runs) and remove the file."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    was_alive = pid_alive(pid)
    if was_alive:
        stop(pid, timeout=timeout)
    pid_file.unlink(missing_ok=True)
    return was_alive
