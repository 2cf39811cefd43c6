"""Runs the Optimizer's training worker (servers/optimizer/worker) in `.venv-rl` through the mesh's
shared `LocalProcessRunner` (the Trainer's recipes run through the same one): its own session,
a time and a memory limit, every line streamed, the whole process group killed when the call is
cancelled or a limit is hit, and its pid recorded so a restarted server can kill a leftover.

    <rl_python> -m servers.optimizer.worker train --spec WORK/spec.json --out WORK/out

The worker prints one JSON object per line for its progress (`{"event": "state" | "episode" |
"done" | "error", ...}`) and plain lines for its evaluation table; both reach `on_event`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.common import errors
from servers.common.processes import LocalProcessRunner, RunRequest

EventSink = Callable[[dict[str, Any]], Awaitable[None]]
INHERITED = ("PATH", "LANG", "LC_ALL", "TMPDIR")


@dataclass(frozen=True)
class TrainOutcome:
    """What a finished worker left: the policy file and result.json's content on success."""

    exit_code: int | None
    failure: str = ""  # empty when the worker succeeded
    policy_path: Path | None = None
    result: dict[str, Any] = field(default_factory=dict)
    peak_rss_bytes: int = 0
    seconds: float = 0.0


class WorkerRunner:
    def __init__(self, rl_python: Path, repo_root: Path, *, runner: LocalProcessRunner | None = None,
                 grid_cache: Path | None = None):
        self.rl_python, self.repo_root = rl_python, repo_root
        # Converted SimBench grids shared by every job (a job's HOME is its own work dir); the
        # environment's own default when none is given (servers/optimizer/gridshift/data.py).
        self.grid_cache = grid_cache or Path(os.environ.get("MLMESH_GRIDSHIFT_CACHE")
                                             or Path.home() / ".cache" / "mlmesh-gridshift")
        self.runner = runner or LocalProcessRunner(what="the training job")
        self.env = {k: os.environ[k] for k in INHERITED if k in os.environ}

    async def train(self, spec: dict[str, Any], work_dir: Path, *, time_limit_seconds: int,
                    memory_limit_bytes: int, on_event: EventSink, pid_file: Path | None = None) -> TrainOutcome:
        if not os.access(self.rl_python, os.X_OK):
            raise errors.Unavailable(f"the RL environment's Python {self.rl_python} is missing: run `make rl-venv`",
                                     reason="RL_ENVIRONMENT_MISSING")
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "spec.json").write_text(json.dumps(spec))
        out = work_dir / "out"
        env = self._env(work_dir)
        request = RunRequest(argv=[str(self.rl_python), "-m", "servers.optimizer.worker", "train",
                                   "--spec", str(work_dir / "spec.json"), "--out", str(out)],
                             cwd=self.repo_root, env=env, time_limit_seconds=time_limit_seconds,
                             memory_limit_bytes=memory_limit_bytes, pid_file=pid_file)
        invalid: dict[str, Any] = {}

        async def on_line(stream: str, text: str) -> None:
            event: dict[str, Any] | None = None
            if stream == "stdout" and text.startswith("{"):
                try:
                    event = json.loads(text)
                except ValueError:
                    event = None
            if event is None:
                event = {"event": "log", "stream": stream, "text": text}
            elif event.get("event") == "error":
                invalid.update(event)
            await on_event(event)

        result = await self.runner.run(request, on_line)
        if result.limit_failure:
            return TrainOutcome(result.exit_code, failure=result.limit_failure, peak_rss_bytes=result.peak_rss_bytes,
                                seconds=result.seconds)
        if invalid:
            raise errors.InvalidArgument(invalid.get("message", "invalid job"),
                                         reason="SPEC_INVALID", metadata={"field": str(invalid.get("field", ""))})
        if result.exit_code != 0:
            tail = " | ".join(result.stderr_tail[-3:]) or "no output"
            return TrainOutcome(result.exit_code, failure=f"the training worker exited with status "
                                f"{result.exit_code}: {tail}", peak_rss_bytes=result.peak_rss_bytes,
                                seconds=result.seconds)
        try:
            summary = json.loads((out / "result.json").read_text())
        except (OSError, ValueError) as exc:
            return TrainOutcome(result.exit_code, failure=f"the training worker left no readable result ({exc})")
        return TrainOutcome(0, policy_path=out / "policy.zip", result=summary, peak_rss_bytes=result.peak_rss_bytes,
                            seconds=result.seconds)

    async def optimize(self, spec: dict[str, Any], policy: Path, day: int, work_dir: Path, *,
                       time_limit_seconds: int, memory_limit_bytes: int,
                       forecast: Path | None = None) -> dict[str, Any]:
        """Plays `day` (or the one-day forecast CSV) with the stored policy (`worker optimize`); the
        plan.json it wrote. A day outside the profiles or a bad forecast is InvalidArgument naming
        the field; any other failure FailedPrecondition."""
        args = ["--forecast", str(forecast)] if forecast is not None else ["--day", str(day)]
        what = "the forecast" if forecast is not None else f"day {day}"
        return await self._use_policy("optimize", spec, policy, args, work_dir, work_dir / "plan.json",
                                      time_limit_seconds, memory_limit_bytes, f"plan {what}")

    async def evaluate(self, spec: dict[str, Any], policy: Path, days: tuple[int, int], work_dir: Path, *,
                       time_limit_seconds: int, memory_limit_bytes: int) -> dict[str, Any]:
        """The stored policy beside the baselines on `days` (`worker evaluate`); the report it wrote."""
        return await self._use_policy("evaluate", spec, policy, ["--days", str(days[0]), str(days[1])], work_dir,
                                      work_dir / "evaluation.json", time_limit_seconds, memory_limit_bytes,
                                      f"evaluate days [{days[0]}, {days[1]})")

    async def _use_policy(self, command: str, spec: dict[str, Any], policy: Path, args: list[str], work_dir: Path,
                          out: Path, time_limit_seconds: int, memory_limit_bytes: int, what: str) -> dict[str, Any]:
        if not os.access(self.rl_python, os.X_OK):
            raise errors.Unavailable(f"the RL environment's Python {self.rl_python} is missing: run `make rl-venv`",
                                     reason="RL_ENVIRONMENT_MISSING")
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "spec.json").write_text(json.dumps(spec))
        request = RunRequest(argv=[str(self.rl_python), "-m", "servers.optimizer.worker", command,
                                   "--spec", str(work_dir / "spec.json"), "--policy", str(policy), *args,
                                   "--out", str(out)],
                             cwd=self.repo_root, env=self._env(work_dir), time_limit_seconds=time_limit_seconds,
                             memory_limit_bytes=memory_limit_bytes)
        invalid: dict[str, Any] = {}

        async def on_line(stream: str, text: str) -> None:
            if stream == "stdout" and text.startswith('{"event": "error"'):
                with contextlib.suppress(ValueError):
                    invalid.update(json.loads(text))

        result = await self.runner.run(request, on_line)
        if invalid:
            field_name = str(invalid.get("field", ""))
            if field_name == "forecast":
                field_name = "forecast_csv"
            raise errors.InvalidArgument(f"{field_name}: {invalid.get('message') or f'cannot {what}'}",
                                         reason="FORECAST_INVALID" if field_name == "forecast_csv" else "DAY_INVALID",
                                         metadata={"field": field_name})
        if result.limit_failure or result.exit_code != 0:
            tail = " | ".join(result.stderr_tail[-3:]) or "no output"
            raise errors.FailedPrecondition(result.limit_failure or f"the worker could not {what} "
                                            f"(exit status {result.exit_code}): {tail}",
                                            reason=f"{command.upper()}_FAILED")
        try:
            return json.loads(out.read_text())
        except (OSError, ValueError) as exc:
            raise errors.FailedPrecondition(f"the worker left no readable result ({exc})",
                                            reason=f"{command.upper()}_FAILED") from None

    def _env(self, work_dir: Path) -> dict[str, str]:
        return {**self.env, "HOME": str(work_dir), "PYTHONPATH": str(self.repo_root), "PYTHONUNBUFFERED": "1",
                "OMP_NUM_THREADS": "1", "MPLCONFIGDIR": str(work_dir / ".matplotlib"),
                "MLMESH_GRIDSHIFT_CACHE": str(self.grid_cache)}

    def kill_leftover(self, pid_file: Path) -> bool:
        return self.runner.kill_leftover(pid_file)
