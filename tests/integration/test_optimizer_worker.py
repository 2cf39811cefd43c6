"""The Optimizer's training worker driven from the mesh's virtualenv as the server will drive it:
a real process in .venv-rl through servers.common.processes (limits, cancel, leftovers)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import psutil
import pytest

from servers.common import errors
from servers.optimizer.adapters.worker_runner import WorkerRunner

REPO = Path(__file__).resolve().parents[2]
SPEC = {"algorithm": "PPO", "total_timesteps": 96, "seed": 2, "train_days": [160, 170], "eval_days": [171, 173],
        "max_actions": 4, "hyperparameters": {"n_steps": 32, "batch_size": 16}}


@pytest.fixture(scope="module")
def runner() -> WorkerRunner:
    python = REPO / ".venv-rl" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make rl-venv` (it is part of `make test`)", pytrace=False)
    return WorkerRunner(python, REPO)


def _alive(pid_file: Path) -> bool:
    pid = int(pid_file.read_text().split()[0])
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


async def test_trains_evaluates_and_streams_progress(runner, tmp_path):
    events: list[dict] = []

    async def sink(event: dict) -> None:
        events.append(event)

    outcome = await runner.train(SPEC, tmp_path, time_limit_seconds=300, memory_limit_bytes=4 << 30, on_event=sink)
    assert outcome.failure == "" and outcome.exit_code == 0
    assert outcome.policy_path is not None and outcome.policy_path.stat().st_size > 0
    kinds = [e["event"] for e in events]
    assert kinds.count("episode") == 96 // 4
    assert [e["state"] for e in events if e["event"] == "state"] == ["TRAINING", "EVALUATING"]
    assert kinds[-1] == "done"
    assert any(e["event"] == "log" and e["text"].startswith("greedy ") for e in events)  # the printed table
    evaluation = outcome.result["evaluation"]
    assert evaluation["days"] == [171, 172]
    assert set(evaluation) >= {"agent", "no_shift", "random", "greedy"}


async def test_a_bad_spec_is_invalid_argument_naming_the_field(runner, tmp_path):
    async def sink(_event: dict) -> None:
        pass

    with pytest.raises(errors.InvalidArgument) as err:
        await runner.train({**SPEC, "eval_days": [165, 175]}, tmp_path, time_limit_seconds=120,
                           memory_limit_bytes=4 << 30, on_event=sink)
    assert err.value.metadata["field"] == "eval_days"


async def test_time_limit_and_cancel_leave_no_process(runner, tmp_path):
    async def sink(_event: dict) -> None:
        pass

    long = {**SPEC, "total_timesteps": 10_000_000}
    pid_file = tmp_path / "limit.pid"
    outcome = await runner.train(long, tmp_path / "limit", time_limit_seconds=4, memory_limit_bytes=4 << 30,
                                 on_event=sink, pid_file=pid_file)
    assert outcome.failure == "the training job exceeded its time limit of 4 s"
    assert not _alive(pid_file)

    started = asyncio.Event()

    async def on_event(event: dict) -> None:
        if event.get("event") == "episode":
            started.set()

    pid_file = tmp_path / "cancel.pid"
    task = asyncio.create_task(runner.train(long, tmp_path / "cancel", time_limit_seconds=300,
                                            memory_limit_bytes=4 << 30, on_event=on_event, pid_file=pid_file))
    await asyncio.wait_for(started.wait(), timeout=120)
    assert _alive(pid_file)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid_file)
