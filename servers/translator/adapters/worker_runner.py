"""Runs the conversion worker (servers/translator/worker) as a subprocess in the ML environment.

    <ml_python> -m servers.translator.worker --framework F --model M --signature JSON --dataset D
        --out OUT.onnx --report R.json --rows A:B --opset N

from the repository root, in its own process group (a time limit or a cancelled call kills the
whole group), with a small environment: the inherited variables the settings name plus
TF_CPP_MIN_LOG_LEVEL=3. Its exit status and last stderr line become a `WorkerOutcome`; the
core decides what the client sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path

from servers.common import errors
from servers.translator.domain.ports import WorkerOutcome, WorkerRequest

log = logging.getLogger("mlmesh.translator.worker")
ERROR_PREFIX = "translator-worker: error: "
STDERR_TAIL_BYTES = 64 * 1024


class SubprocessWorker:
    """Implements `domain.ports.WorkerRunner` with local processes."""

    def __init__(self, ml_python: Path, repo_root: Path, *, time_limit_seconds: float,
                 inherited_env: dict[str, str] | None = None):
        self.ml_python, self.repo_root = ml_python, repo_root
        self.time_limit_seconds = time_limit_seconds
        self.env = {**(inherited_env or {}), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(repo_root),
                    "PYTHONUNBUFFERED": "1"}

    def command(self, r: WorkerRequest) -> list[str]:
        # --opt=value throughout: a value that starts with '-' (rows "-256:") is not taken for an option.
        return [str(self.ml_python), "-m", "servers.translator.worker", f"--framework={r.framework}",
                f"--model={r.model_path}", f"--signature={r.signature}", f"--dataset={r.dataset_path}",
                f"--out={r.out_path}", f"--report={r.report_path}", f"--rows={r.rows}", f"--opset={r.opset}"]

    async def run(self, request: WorkerRequest) -> WorkerOutcome:
        if not os.access(self.ml_python, os.X_OK):
            raise errors.Unavailable(
                f"the ML environment's Python {self.ml_python} is missing: run `make ml-venv` (or set "
                "MLMESH_TRANSLATOR_ML_PYTHON)", reason="ML_ENVIRONMENT_MISSING")
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(request), cwd=self.repo_root, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise errors.Unavailable(f"cannot start the conversion worker with {self.ml_python}: {exc}",
                                     reason="ML_ENVIRONMENT_MISSING") from None
        tail = bytearray()

        async def read_stderr() -> None:
            assert proc.stderr is not None
            while chunk := await proc.stderr.read(65536):
                tail.extend(chunk)
                del tail[:-STDERR_TAIL_BYTES]

        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.gather(read_stderr(), proc.wait()), self.time_limit_seconds)
            except TimeoutError:
                timed_out = True
                _kill_group(proc.pid)
                await proc.wait()
        finally:
            if proc.returncode is None:  # the call was cancelled: take the worker down with it
                _kill_group(proc.pid)
                with contextlib.suppress(Exception):
                    await asyncio.shield(proc.wait())
        stderr = tail.decode("utf-8", "replace")
        lines = [line for line in stderr.splitlines() if line.strip()]
        reason = ""
        if lines and lines[-1].startswith(ERROR_PREFIX):
            reason = lines[-1][len(ERROR_PREFIX):].strip()
        report = _read_report(request.report_path)
        if not reason and report and not report.get("ok"):
            reason = str((report.get("error") or {}).get("message") or "")
        if not reason and lines and proc.returncode == 2:  # argparse's own "usage: … error: …"
            reason = lines[-1].strip()
        if timed_out:
            reason = f"the conversion was stopped after {self.time_limit_seconds:g} s"
        if proc.returncode not in (0, 2) or timed_out:
            log.warning("conversion worker exited with %s%s; stderr tail:\n%s", proc.returncode,
                        " (time limit)" if timed_out else "", stderr[-4000:])
        return WorkerOutcome(returncode=proc.returncode if proc.returncode is not None else -1, reason=reason,
                             stderr_tail=stderr[-4000:], report=report, timed_out=timed_out)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_report(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
