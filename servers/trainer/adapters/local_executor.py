"""The local executor: runs a recipe as a process on the Trainer's machine, and builds the
per-recipe virtualenvs layered on the ML base environment.

The process runs in its own session (so its whole process group can be killed), with only the
environment it is given. Limits:
- time: after `time_limit_seconds` of wall clock the group gets SIGKILL;
- memory: the resident set of the process and all its descendants is polled (psutil) every
  `poll_interval` seconds; above `memory_limit_bytes` the group gets SIGKILL. Polling is used
  rather than RLIMIT_AS because PyTorch reserves far more address space than it touches; a
  process may overshoot the limit for up to one poll interval.
stdout and stderr are read in chunks and split into lines (very long lines are cut), so a
recipe that never prints a newline cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import psutil

from servers.trainer.domain.ports import LineSink, RunRequest, RunResult
from servers.trainer.domain.steps import StepFailed

log = logging.getLogger("mlmesh.trainer.local")

MAX_LINE_BYTES = 16 * 1024


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of `proc` and every descendant (0 for those that vanished meanwhile)."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


async def _pump(stream: asyncio.StreamReader, name: str, on_line: LineSink, tail: collections.deque | None) -> None:
    pending = b""
    while True:
        block = await stream.read(64 * 1024)
        if not block:
            break
        pending += block
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                if len(pending) > MAX_LINE_BYTES:  # a line without end: emit what we have
                    cut = MAX_LINE_BYTES
                    line, pending = pending[:cut], pending[cut:]
                else:
                    break
            else:
                line, pending = pending[:cut], pending[cut + 1:]
            text = line.decode("utf-8", errors="replace").rstrip("\r")
            if tail is not None:
                tail.append(text)
            await on_line(name, text)
    if pending:
        text = pending.decode("utf-8", errors="replace").rstrip("\r")
        if tail is not None:
            tail.append(text)
        await on_line(name, text)


class LocalProcessRunner:
    """Implements `domain.ports.ProcessRunner` with asyncio subprocesses."""

    def __init__(self, *, poll_interval: float = 0.2, stderr_tail_lines: int = 20):
        self.poll_interval = poll_interval
        self.stderr_tail_lines = stderr_tail_lines

    async def run(self, request: RunRequest, on_line: LineSink) -> RunResult:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *request.argv, cwd=request.cwd, env=request.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
        pgid = proc.pid  # the session leader's pid is its group id
        if request.pid_file is not None:
            with contextlib.suppress(psutil.Error, OSError):
                created = psutil.Process(proc.pid).create_time()
                request.pid_file.write_text(f"{proc.pid} {created}\n")
        tail: collections.deque[str] = collections.deque(maxlen=self.stderr_tail_lines)
        limit_failure = ""
        peak = 0

        async def watch_memory() -> None:
            nonlocal limit_failure, peak
            try:
                ps = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while proc.returncode is None:
                rss = await asyncio.to_thread(tree_rss, ps)
                peak = max(peak, rss)
                if rss > request.memory_limit_bytes:
                    limit_failure = (f"the recipe exceeded its memory limit of {request.memory_limit_bytes} bytes "
                                     f"(peak {peak})")
                    _kill_group(pgid)
                    return
                await asyncio.sleep(self.poll_interval)

        assert proc.stdout is not None and proc.stderr is not None
        readers = asyncio.gather(_pump(proc.stdout, "stdout", on_line, None),
                                 _pump(proc.stderr, "stderr", on_line, tail))
        monitor = asyncio.create_task(watch_memory())
        try:
            try:
                await asyncio.wait_for(proc.wait(), timeout=request.time_limit_seconds)
            except TimeoutError:
                if not limit_failure:
                    limit_failure = f"the recipe exceeded its time limit of {request.time_limit_seconds} s"
                _kill_group(pgid)
                await proc.wait()
        finally:
            # Whatever happened (exit, limit, cancel): nothing of the job may outlive it.
            _kill_group(pgid)
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.shield(proc.wait())
            try:
                await asyncio.wait_for(asyncio.shield(readers), timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                readers.cancel()
        return RunResult(exit_code=proc.returncode, limit_failure=limit_failure, peak_rss_bytes=peak,
                         stderr_tail=list(tail), seconds=time.monotonic() - started)

    def kill_leftover(self, pid_file: Path) -> bool:
        try:
            pid_text, created_text = pid_file.read_text().split()
            pid, created = int(pid_text), float(created_text)
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) > 0.01:
                return False  # the pid was reused by another process
        except (OSError, ValueError, psutil.Error):
            return False
        log.warning("killing process group %s left running by a previous Trainer", pid)
        _kill_group(pid)
        return True


class RecipeEnvironments:
    """Implements `domain.ports.Environments`.

    A recipe without requirements runs with the ML base Python (`base_python`, `.venv-ml`). One
    with requirements runs in `<envs_dir>/<sha256 of the requirements file>`: a virtualenv whose
    site-packages has a `.pth` pointing at the base environment's site-packages (torch and the
    rest are not reinstalled), into which pip installs the requirements. It is built once in a
    temporary directory, renamed into place when pip succeeded, and reused by every recipe
    with the same requirements file.
    """

    def __init__(self, base_python: Path, envs_dir: Path, *, pip_timeout: float = 1800.0):
        self.base_python = base_python
        self.envs_dir = envs_dir
        self.pip_timeout = pip_timeout
        self._locks: dict[str, asyncio.Lock] = {}

    async def python_for(self, requirements: Path | None, on_line: LineSink) -> Path:
        if not self.base_python.exists():
            raise StepFailed(f"the ML base environment is missing: {self.base_python} does not exist "
                             "(run `make ml-venv`)")
        if requirements is None:
            return self.base_python
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
        env_dir = self.envs_dir / digest
        python = env_dir / "bin" / "python"
        async with self._locks.setdefault(digest, asyncio.Lock()):
            if (env_dir / ".mlmesh-ready").exists():
                await on_line("trainer", f"environment: reusing {env_dir.name[:12]} for the recipe's requirements")
                return python
            await on_line("trainer", f"environment: building {env_dir.name[:12]} for the recipe's requirements")
            self.envs_dir.mkdir(parents=True, exist_ok=True)
            build = self.envs_dir / f".build-{digest[:12]}-{uuid.uuid4().hex[:8]}"
            try:
                await self._build(build, requirements, on_line)
                shutil.rmtree(env_dir, ignore_errors=True)
                os.rename(build, env_dir)
            finally:
                shutil.rmtree(build, ignore_errors=True)
        return python

    async def _run(self, argv: list[str], on_line: LineSink, what: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        assert proc.stdout is not None
        tail: collections.deque[str] = collections.deque(maxlen=10)

        async def sink(_stream: str, text: str) -> None:
            tail.append(text)
            await on_line("trainer", f"environment: {text}")

        try:
            await asyncio.wait_for(asyncio.gather(_pump(proc.stdout, "trainer", sink, None), proc.wait()),
                                   timeout=self.pip_timeout)
        except TimeoutError:
            raise StepFailed(f"{what} took longer than {self.pip_timeout:.0f} s") from None
        finally:
            _kill_group(proc.pid)
            if proc.returncode is None:
                await proc.wait()
        if proc.returncode != 0:
            raise StepFailed(f"{what} failed (exit status {proc.returncode}): " + " | ".join(tail))

    async def _build(self, build: Path, requirements: Path, on_line: LineSink) -> None:
        base = str(self.base_python)
        await self._run([base, "-m", "venv", "--without-pip", str(build)], on_line, "creating the recipe's virtualenv")
        probe = await asyncio.create_subprocess_exec(
            base, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib']); "
                        "print(sysconfig.get_paths()['platlib'])",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await probe.communicate()
        base_paths = list(dict.fromkeys(out.decode().split()))
        new_python = build / "bin" / "python"
        probe = await asyncio.create_subprocess_exec(
            str(new_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await probe.communicate()
        site = Path(out.decode().strip())
        site.mkdir(parents=True, exist_ok=True)
        (site / "_mlmesh_base.pth").write_text("".join(f"{p}\n" for p in base_paths))
        await self._run([base, "-m", "pip", "--python", str(new_python), "install", "--disable-pip-version-check",
                         "--no-input", "-r", str(requirements)],
                        on_line, "installing the recipe's requirements")
        (build / ".mlmesh-ready").write_text(str(requirements.name) + "\n")
