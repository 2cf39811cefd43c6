"""Agents: the records, the state machine and the limits. Plain data and rules: no grpc, no
generated code, no SQL.

An agent is a training job and, once it succeeded, the policy it left in the Registry:

    QUEUED -> TRAINING -> EVALUATING -> STORING -> SUCCEEDED
       \\          \\            \\           \\
        +----------+------------+-----------+--> FAILED | CANCELLED

SUCCEEDED, FAILED and CANCELLED are final: nothing leaves them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from servers.common import errors

QUEUED = "QUEUED"
TRAINING = "TRAINING"
EVALUATING = "EVALUATING"
STORING = "STORING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

STATES = (QUEUED, TRAINING, EVALUATING, STORING, SUCCEEDED, FAILED, CANCELLED)
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})
LIVE_STATES = frozenset(STATES) - FINAL_STATES

_ENDINGS = {FAILED, CANCELLED}
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({TRAINING, *_ENDINGS}),
    TRAINING: frozenset({EVALUATING, *_ENDINGS}),
    EVALUATING: frozenset({STORING, *_ENDINGS}),
    STORING: frozenset({SUCCEEDED, *_ENDINGS}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}

# Stable-Baselines3's DQN, PPO, A2C; TorchRL's Double DQN, Dueling DQN, REINFORCE.
ALGORITHMS = ("DQN", "PPO", "A2C", "DOUBLE_DQN", "DUELING_DQN", "REINFORCE")
MULTIDISCRETE_ALGORITHMS = ("PPO", "A2C")  # the others act on the flattened discrete action
REWARDS = ("level", "gain")
DEFAULT_GRID = "1-LV-rural1--0-sw"

RESTART_REASON = "the Optimizer restarted while the agent was training; create it again"
CANCEL_REASON = "the agent was cancelled"


def can_transition(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def check_transition(agent_id: str, old: str, new: str) -> None:
    """FailedPrecondition unless an agent may go from `old` to `new`."""
    if old not in TRANSITIONS or new not in TRANSITIONS:
        raise ValueError(f"unknown agent state {old!r} or {new!r}")
    if not can_transition(old, new):
        msg = (f"agent {agent_id} has already ended ({old}); it cannot become {new}" if old in FINAL_STATES
               else f"agent {agent_id} cannot go from {old} to {new}")
        raise errors.FailedPrecondition(msg, reason="AGENT_STATE_CONFLICT",
                                        metadata={"agent_id": agent_id, "state": old})


def agent_not_found(agent_id: str) -> errors.NotFound:
    """The answer for an agent that does not exist or that the caller may not see: the same."""
    return errors.NotFound(f"agent {agent_id} does not exist", reason="AGENT_NOT_FOUND",
                           metadata={"agent_id": agent_id})


@dataclass(frozen=True)
class GridSource:
    """A SimBench code (its profiles ship with simbench), or a grid and its profiles registered as
    Registry datasets (pandapower JSON and a CSV)."""

    simbench_code: str = ""
    grid_dataset_id: str = ""
    profiles_dataset_id: str = ""

    @property
    def registered(self) -> bool:
        return bool(self.grid_dataset_id or self.profiles_dataset_id)


@dataclass(frozen=True)
class AgentSpec:
    """What a caller asks for (CreateAgent)."""

    display_name: str
    grid: GridSource
    algorithm: str
    hyperparameters: dict[str, float]
    total_timesteps: int
    seed: int
    train_days: tuple[int, int]
    eval_days: tuple[int, int]
    shiftable_loads: int = 0  # 0: 7
    actions_per_day: int = 0  # 0: 24
    reward: str = ""  # "": level
    time_limit_seconds: int = 0
    memory_limit_bytes: int = 0


@dataclass(frozen=True)
class Agent:
    """An agent as the Optimizer records it."""

    agent_id: str
    organization_id: str
    display_name: str
    grid: GridSource
    algorithm: str
    hyperparameters: dict[str, Any]
    total_timesteps: int
    seed: int
    train_days: tuple[int, int]
    eval_days: tuple[int, int]
    shiftable_loads: int
    actions_per_day: int
    reward: str
    time_limit_seconds: int
    memory_limit_bytes: int
    state: str
    create_time: dt.datetime
    failure_reason: str = ""
    timesteps_done: int = 0
    episodes_done: int = 0
    last_episode_return: float = 0.0
    evaluation: dict[str, Any] = field(default_factory=dict)  # the worker's evaluation table
    model_id: str = ""
    grid_sha256: str = ""
    profiles_sha256: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def moved(self, state: str, *, now: dt.datetime, failure_reason: str = "", **changes) -> Agent:
        """This agent in `state` (checked against the state machine), with its times set."""
        check_transition(self.agent_id, self.state, state)
        start = self.start_time
        if state == TRAINING and start is None:
            start = now
        end = now if state in FINAL_STATES else self.end_time
        return replace(self, state=state, failure_reason=failure_reason or self.failure_reason,
                       start_time=start, end_time=end, **changes)

    def worker_spec(self) -> dict[str, Any]:
        """The job spec the worker reads (servers/optimizer/worker/spec.py); grid paths are set by
        the core when the grid is a registered one."""
        return {"algorithm": self.algorithm, "total_timesteps": self.total_timesteps, "seed": self.seed,
                "train_days": list(self.train_days), "eval_days": list(self.eval_days),
                "grid": self.grid.simbench_code or DEFAULT_GRID, "n_shiftable": self.shiftable_loads,
                "max_actions": self.actions_per_day, "reward": self.reward,
                "hyperparameters": dict(self.hyperparameters)}


@dataclass(frozen=True)
class Episode:
    """A finished training episode (one day), as the worker reports it."""

    episode: int
    timesteps: int
    episode_return: float
    scr: float
    ssr: float
    violations: int


@dataclass(frozen=True)
class Page:
    items: list
    next_page_token: str


@dataclass(frozen=True)
class Limits:
    """What a job gets unless it asks, and the most it may ask for."""

    default_time_limit_seconds: int
    max_time_limit_seconds: int
    default_memory_limit_bytes: int
    max_memory_limit_bytes: int

    def resolve(self, time_limit_seconds: int, memory_limit_bytes: int) -> tuple[int, int]:
        for name, value, top in (("time_limit_seconds", time_limit_seconds, self.max_time_limit_seconds),
                                 ("memory_limit_bytes", memory_limit_bytes, self.max_memory_limit_bytes)):
            if value < 0:
                raise errors.InvalidArgument(f"agent.{name} {value} is negative", reason="LIMIT_INVALID",
                                             metadata={"field": f"agent.{name}"})
            if value > top:
                raise errors.InvalidArgument(f"agent.{name} {value} is above this Optimizer's maximum of {top}",
                                             reason="LIMIT_TOO_HIGH", metadata={"field": f"agent.{name}"})
        return (time_limit_seconds or self.default_time_limit_seconds,
                memory_limit_bytes or self.default_memory_limit_bytes)


@dataclass(frozen=True)
class DayFigures:
    scr: float
    ssr: float
    reward: float
    power_flow_status: str = ""
    violations: int = 0


@dataclass(frozen=True)
class Shift:
    load_index: int
    from_hour: int
    to_hour: int
    fraction: float
    energy_mwh: float


@dataclass(frozen=True)
class LoadProfile:
    load_index: int
    hourly_mwh_before: tuple[float, ...]
    hourly_mwh_after: tuple[float, ...]


@dataclass(frozen=True)
class DayPlan:
    """A day planned by an agent's policy (OptimizeDay)."""

    day: int
    shifts: tuple[Shift, ...]
    before: DayFigures
    after: DayFigures
    greedy: DayFigures
    loads: tuple[LoadProfile, ...]
    model_id: str
    source: str = ""  # "profiles day <n>", "forecast (inline CSV)", "forecast dataset <id>"
    forecast_sha256: str = ""


@dataclass(frozen=True)
class Forecast:
    """A day to plan given as a forecast CSV: inline, or a Registry dataset."""

    csv: bytes = b""
    dataset_id: str = ""

    def __bool__(self) -> bool:
        return bool(self.csv or self.dataset_id)


def plan_from_worker(out: dict[str, Any], model_id: str, source: str = "", forecast_sha256: str = "") -> DayPlan:
    """The worker's plan.json (servers/optimizer/worker/train.py `optimize`) as a record."""
    def figures(d: dict[str, Any]) -> DayFigures:
        flow = d.get("power_flow") or {}
        return DayFigures(scr=float(d["scr"]), ssr=float(d["ssr"]), reward=float(d["reward"]),
                          power_flow_status=str(flow.get("status", "")),
                          violations=int(flow.get("violations", d.get("violations", 0))))

    shifts = tuple(Shift(int(s["load_index"]), int(s["from_hour"]), int(s["to_hour"]), float(s["fraction"]),
                         float(s["energy_mwh"])) for s in out["plan"])
    loads = tuple(LoadProfile(int(idx), tuple(map(float, before)), tuple(map(float, after))) for idx, before, after
                  in zip(out["shiftable_loads"], out["hourly_mwh_before"], out["hourly_mwh_after"], strict=True))
    return DayPlan(day=int(out["day"]), shifts=shifts, before=figures(out["before"]), after=figures(out["after"]),
                   greedy=figures(out["greedy"]), loads=loads, model_id=model_id,
                   source=source or f"profiles day {int(out['day'])}", forecast_sha256=forecast_sha256)
