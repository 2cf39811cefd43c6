"""Optimizer messages <-> domain records: pure function pairs (round-trip tested)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import timestamp_pb2
from mlmesh.optimizer.v1 import optimizer_service_pb2 as pb

from servers.common import timestamps
from servers.optimizer.domain import agents as A
from servers.optimizer.domain.agents import Agent, AgentSpec, Episode, GridSource

_STATES = {A.QUEUED: pb.Agent.STATE_QUEUED, A.TRAINING: pb.Agent.STATE_TRAINING,
           A.EVALUATING: pb.Agent.STATE_EVALUATING, A.STORING: pb.Agent.STATE_STORING,
           A.SUCCEEDED: pb.Agent.STATE_SUCCEEDED, A.FAILED: pb.Agent.STATE_FAILED,
           A.CANCELLED: pb.Agent.STATE_CANCELLED}
_STATES_BACK = {v: k for k, v in _STATES.items()}
_ALGORITHMS = {"DQN": pb.Agent.ALGORITHM_DQN, "PPO": pb.Agent.ALGORITHM_PPO, "A2C": pb.Agent.ALGORITHM_A2C,
               "DOUBLE_DQN": pb.Agent.ALGORITHM_DOUBLE_DQN, "DUELING_DQN": pb.Agent.ALGORITHM_DUELING_DQN,
               "REINFORCE": pb.Agent.ALGORITHM_REINFORCE}
_ALGORITHMS_BACK = {v: k for k, v in _ALGORITHMS.items()}
POLICIES = ("agent", "no_shift", "random", "greedy")


def _ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if value is None else timestamps.timestamp_to_proto(value)


def _ts_back(p, name: str) -> dt.datetime | None:
    return timestamps.timestamp_from_proto(getattr(p, name)) if p.HasField(name) else None


def grid_to_proto(g: GridSource) -> pb.GridSource:
    if g.registered:
        return pb.GridSource(registered=pb.RegisteredGrid(grid_dataset_id=g.grid_dataset_id,
                                                          profiles_dataset_id=g.profiles_dataset_id))
    return pb.GridSource(simbench_code=g.simbench_code) if g.simbench_code else pb.GridSource()


def grid_from_proto(p: pb.GridSource) -> GridSource:
    if p.WhichOneof("source") == "registered":
        return GridSource(grid_dataset_id=p.registered.grid_dataset_id,
                          profiles_dataset_id=p.registered.profiles_dataset_id)
    return GridSource(simbench_code=p.simbench_code)


def _days(p: pb.DayRange) -> tuple[int, int]:
    return p.first, p.last


def evaluation_to_proto(e: dict[str, Any]) -> pb.Evaluation | None:
    """The worker's evaluation summary (days and per-policy mean/std) as the contract's table."""
    if not e:
        return None
    days = e.get("days") or [0]
    out = pb.Evaluation(days=pb.DayRange(first=days[0], last=days[-1] + 1))
    for name in POLICIES:
        f = e.get(name)
        if f is None:
            continue
        stat = {k: pb.Statistic(mean=f[k]["mean"], std=f[k]["std"]) for k in ("return", "reward", "scr", "ssr",
                                                                               "violations")}
        out.policies.append(pb.PolicyFigures(policy=name, episodes=int(f.get("episodes", 0)),
                                             episode_return=stat["return"], reward=stat["reward"], scr=stat["scr"],
                                             ssr=stat["ssr"], violations=stat["violations"]))
    return out


def evaluation_from_proto(p: pb.Evaluation) -> dict[str, Any]:
    out: dict[str, Any] = {"days": list(range(p.days.first, p.days.last))}
    for f in p.policies:
        out[f.policy] = {"episodes": f.episodes, **{k: {"mean": s.mean, "std": s.std} for k, s in (
            ("return", f.episode_return), ("reward", f.reward), ("scr", f.scr), ("ssr", f.ssr),
            ("violations", f.violations))}}
    return out


def agent_to_proto(a: Agent) -> pb.Agent:
    return pb.Agent(
        agent_id=a.agent_id, organization_id=a.organization_id, display_name=a.display_name,
        grid=grid_to_proto(a.grid), algorithm=_ALGORITHMS.get(a.algorithm, pb.Agent.ALGORITHM_UNSPECIFIED),
        hyperparameters={k: float(v) for k, v in a.hyperparameters.items()}, total_timesteps=a.total_timesteps,
        seed=a.seed, train_days=pb.DayRange(first=a.train_days[0], last=a.train_days[1]),
        eval_days=pb.DayRange(first=a.eval_days[0], last=a.eval_days[1]), shiftable_loads=a.shiftable_loads,
        actions_per_day=a.actions_per_day, time_limit_seconds=a.time_limit_seconds,
        memory_limit_bytes=a.memory_limit_bytes, state=_STATES[a.state], failure_reason=a.failure_reason,
        timesteps_done=a.timesteps_done, episodes_done=a.episodes_done, evaluation=evaluation_to_proto(a.evaluation),
        model_id=a.model_id, grid_sha256=a.grid_sha256, profiles_sha256=a.profiles_sha256,
        create_time=_ts(a.create_time), start_time=_ts(a.start_time), end_time=_ts(a.end_time), reward=a.reward,
        last_episode_return=a.last_episode_return)


def agent_from_proto(p: pb.Agent) -> Agent:
    return Agent(
        agent_id=p.agent_id, organization_id=p.organization_id, display_name=p.display_name,
        grid=grid_from_proto(p.grid), algorithm=_ALGORITHMS_BACK.get(p.algorithm, ""),
        hyperparameters=dict(p.hyperparameters), total_timesteps=p.total_timesteps, seed=p.seed,
        train_days=_days(p.train_days), eval_days=_days(p.eval_days), shiftable_loads=p.shiftable_loads,
        actions_per_day=p.actions_per_day, reward=p.reward, time_limit_seconds=p.time_limit_seconds,
        memory_limit_bytes=p.memory_limit_bytes, state=_STATES_BACK[p.state], create_time=_ts_back(p, "create_time"),
        failure_reason=p.failure_reason, timesteps_done=p.timesteps_done, episodes_done=p.episodes_done,
        last_episode_return=p.last_episode_return,
        evaluation=evaluation_from_proto(p.evaluation) if p.HasField("evaluation") else {},
        model_id=p.model_id, grid_sha256=p.grid_sha256, profiles_sha256=p.profiles_sha256,
        start_time=_ts_back(p, "start_time"), end_time=_ts_back(p, "end_time"))


def spec_from_proto(p: pb.Agent) -> AgentSpec:
    """What CreateAgent reads of the agent (an unset algorithm stays "": the core names the field)."""
    return AgentSpec(
        display_name=p.display_name, grid=grid_from_proto(p.grid), algorithm=_ALGORITHMS_BACK.get(p.algorithm, ""),
        hyperparameters=dict(p.hyperparameters), total_timesteps=p.total_timesteps, seed=p.seed,
        train_days=_days(p.train_days), eval_days=_days(p.eval_days), shiftable_loads=p.shiftable_loads,
        actions_per_day=p.actions_per_day, reward=p.reward, time_limit_seconds=p.time_limit_seconds,
        memory_limit_bytes=p.memory_limit_bytes)


def spec_to_proto(s: AgentSpec) -> pb.Agent:
    return pb.Agent(
        display_name=s.display_name, grid=grid_to_proto(s.grid),
        algorithm=_ALGORITHMS.get(s.algorithm, pb.Agent.ALGORITHM_UNSPECIFIED), hyperparameters=s.hyperparameters,
        total_timesteps=s.total_timesteps, seed=s.seed,
        train_days=pb.DayRange(first=s.train_days[0], last=s.train_days[1]),
        eval_days=pb.DayRange(first=s.eval_days[0], last=s.eval_days[1]), shiftable_loads=s.shiftable_loads,
        actions_per_day=s.actions_per_day, reward=s.reward, time_limit_seconds=s.time_limit_seconds,
        memory_limit_bytes=s.memory_limit_bytes)


def episode_to_proto(e: Episode) -> pb.EpisodeProgress:
    return pb.EpisodeProgress(episode=e.episode, timesteps=e.timesteps, episode_return=e.episode_return, scr=e.scr,
                              ssr=e.ssr, violations=e.violations)


def episode_from_proto(p: pb.EpisodeProgress) -> Episode:
    return Episode(p.episode, p.timesteps, p.episode_return, p.scr, p.ssr, p.violations)


def event_to_proto(event: Agent | Episode) -> pb.AgentEvent:
    if isinstance(event, Episode):
        return pb.AgentEvent(episode=episode_to_proto(event))
    return pb.AgentEvent(agent=agent_to_proto(event))


def figures_to_proto(f: A.DayFigures) -> pb.DayFigures:
    return pb.DayFigures(scr=f.scr, ssr=f.ssr, reward=f.reward, power_flow_status=f.power_flow_status,
                         violations=f.violations)


def figures_from_proto(p: pb.DayFigures) -> A.DayFigures:
    return A.DayFigures(p.scr, p.ssr, p.reward, p.power_flow_status, p.violations)


def plan_to_proto(plan: A.DayPlan) -> pb.OptimizeDayResponse:
    return pb.OptimizeDayResponse(
        day=plan.day, model_id=plan.model_id, before=figures_to_proto(plan.before),
        after=figures_to_proto(plan.after), greedy=figures_to_proto(plan.greedy),
        shifts=[pb.Shift(load_index=s.load_index, from_hour=s.from_hour, to_hour=s.to_hour, fraction=s.fraction,
                         energy_mwh=s.energy_mwh) for s in plan.shifts],
        loads=[pb.LoadProfile(load_index=p.load_index, hourly_mwh_before=p.hourly_mwh_before,
                              hourly_mwh_after=p.hourly_mwh_after) for p in plan.loads],
        source=plan.source, forecast_sha256=plan.forecast_sha256)


def plan_from_proto(p: pb.OptimizeDayResponse) -> A.DayPlan:
    return A.DayPlan(
        day=p.day, model_id=p.model_id, before=figures_from_proto(p.before), after=figures_from_proto(p.after),
        greedy=figures_from_proto(p.greedy),
        shifts=tuple(A.Shift(s.load_index, s.from_hour, s.to_hour, s.fraction, s.energy_mwh) for s in p.shifts),
        loads=tuple(A.LoadProfile(x.load_index, tuple(x.hourly_mwh_before), tuple(x.hourly_mwh_after))
                    for x in p.loads), source=p.source, forecast_sha256=p.forecast_sha256)


def forecast_from_proto(p: pb.OptimizeDayRequest) -> A.Forecast:
    which = p.WhichOneof("forecast")
    if which == "forecast_csv":
        return A.Forecast(csv=p.forecast_csv.encode())
    if which == "forecast_dataset_id":
        return A.Forecast(dataset_id=p.forecast_dataset_id)
    return A.Forecast()


def forecast_to_proto(f: A.Forecast, agent_id: str = "", day: int = 0) -> pb.OptimizeDayRequest:
    p = pb.OptimizeDayRequest(agent_id=agent_id, day=day)
    if f.csv:
        p.forecast_csv = f.csv.decode()
    elif f.dataset_id:
        p.forecast_dataset_id = f.dataset_id
    return p
