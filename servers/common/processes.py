"""Running a job's process on this machine with limits: the Trainer's recipes and the
Optimizer's training worker both run through `LocalProcessRunner`.

The process runs in its own session (so its whole process group can be killed), with only the
environment it is given. Limits:
- time: after `time_limit_seconds` of wall clock the group gets SIGKILL;
- memory: the resident set of the process and all its descendants is polled (psutil) every
  `poll_interval` seconds; above `memory_limit_bytes` the group gets SIGKILL. Polling is used
  rather than RLIMIT_AS because PyTorch reserves far more address space than it touches; a
  process may overshoot the limit for up to one poll interval.
stdout and stderr are read in chunks and split into lines (very long lines are cut), so a
process that never prints a newline cannot exhaust memory. The process's pid and start time
can be recorded in a file so that a restarted server kills what its predecessor left running.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger("mlmesh.processes")

LineSink = Callable[[str, str], Awaitable[None]]  # (stream, text)


@dataclass(frozen=True)
class RunRequest:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    time_limit_seconds: int
    memory_limit_bytes: int
    pid_file: Path | None = None  # where the runner records the process, for kill_leftover


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    limit_failure: str = ""  # set when the runner killed the process for a limit
    peak_rss_bytes: int = 0
    stderr_tail: list[str] = field(default_factory=list)
    seconds: float = 0.0


MAX_LINE_BYTES = 16 * 1024


def kill_group(pgid: int) -> None:
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


async def pump(stream: asyncio.StreamReader, name: str, on_line: LineSink, tail: collections.deque | None) -> None:
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
    """Runs one job process with limits (a server's `ProcessRunner` port), on asyncio subprocesses."""

    def __init__(self, *, what: str = "the job", poll_interval: float = 0.2, stderr_tail_lines: int = 20):
        self.what = what  # how a limit failure names the process: "the recipe exceeded its time limit ..."
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
                    limit_failure = (f"{self.what} exceeded its memory limit of {request.memory_limit_bytes} bytes "
                                     f"(peak {peak})")
                    kill_group(pgid)
                    return
                await asyncio.sleep(self.poll_interval)

        assert proc.stdout is not None and proc.stderr is not None
        readers = asyncio.gather(pump(proc.stdout, "stdout", on_line, None),
                                 pump(proc.stderr, "stderr", on_line, tail))
        monitor = asyncio.create_task(watch_memory())
        try:
            try:
                await asyncio.wait_for(proc.wait(), timeout=request.time_limit_seconds)
            except TimeoutError:
                if not limit_failure:
                    limit_failure = f"{self.what} exceeded its time limit of {request.time_limit_seconds} s"
                kill_group(pgid)
                await proc.wait()
        finally:
            # Whatever happened (exit, limit, cancel): nothing of the job may outlive it.
            kill_group(pgid)
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
        log.warning("killing process group %s left running by a previous server process", pid)
        kill_group(pid)
        return True


