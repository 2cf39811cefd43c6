"""The Optimizer's converters round-trip, and its spec check names the field (no sockets)."""

from __future__ import annotations

import datetime as dt

import pytest

from servers.common import errors
from servers.optimizer.api import converters as conv
from servers.optimizer.domain import agents as A
from servers.optimizer.domain.agents import Agent, AgentSpec, Episode, GridSource
from servers.optimizer.domain.service import validate

NOW = dt.datetime(2026, 6, 21, 12, 0, tzinfo=dt.UTC)
FIGURES = {k: {"mean": 0.5, "std": 0.25} for k in ("return", "reward", "scr", "ssr", "violations")}


def spec(**changes) -> AgentSpec:
    fields = dict(display_name="ppo", grid=GridSource(simbench_code=A.DEFAULT_GRID), algorithm="PPO",
                  hyperparameters={"n_steps": 32.0}, total_timesteps=96, seed=1, train_days=(0, 300),
                  eval_days=(300, 366))
    fields.update(changes)
    return AgentSpec(**fields)


def agent(**changes) -> Agent:
    fields = dict(agent_id="6f1c2a4e-0000-4000-8000-000000000001", organization_id="org", display_name="a",
                  grid=GridSource(grid_dataset_id="g", profiles_dataset_id="p"), algorithm="DQN",
                  hyperparameters={"learning_starts": 8.0}, total_timesteps=100, seed=2, train_days=(0, 9),
                  eval_days=(9, 11), shiftable_loads=7, actions_per_day=24, reward="gain", time_limit_seconds=60,
                  memory_limit_bytes=1 << 30, state=A.SUCCEEDED, create_time=NOW, failure_reason="",
                  timesteps_done=100, episodes_done=4, last_episode_return=0.75,
                  evaluation={"days": [9, 10], **{p: {"episodes": 2, **FIGURES} for p in conv.POLICIES}},
                  model_id="m", grid_sha256="a" * 64, profiles_sha256="b" * 64, start_time=NOW, end_time=NOW)
    fields.update(changes)
    return Agent(**fields)


@pytest.mark.parametrize("record", [agent(), agent(grid=GridSource(simbench_code="x"), state=A.QUEUED,
                                                    evaluation={}, start_time=None, end_time=None)])
def test_agent_round_trips(record):
    assert conv.agent_from_proto(conv.agent_to_proto(record)) == record


def test_spec_and_episode_round_trip():
    s = spec(reward="gain", shiftable_loads=5, actions_per_day=12, time_limit_seconds=9, memory_limit_bytes=10)
    assert conv.spec_from_proto(conv.spec_to_proto(s)) == s
    e = Episode(3, 72, 0.5, 0.4, 0.6, 1)
    assert conv.episode_from_proto(conv.episode_to_proto(e)) == e
    assert conv.event_to_proto(e).HasField("episode") and conv.event_to_proto(agent()).HasField("agent")


def test_validate_fills_defaults_and_casts_hyperparameters():
    checked = validate(spec(grid=GridSource()))
    assert checked.grid.simbench_code == A.DEFAULT_GRID and checked.reward == "level"
    assert (checked.shiftable_loads, checked.actions_per_day) == (7, 24)
    assert checked.hyperparameters == {"n_steps": 32} and isinstance(checked.hyperparameters["n_steps"], int)


@pytest.mark.parametrize(("changes", "field"), [
    ({"algorithm": ""}, "agent.algorithm"),
    ({"hyperparameters": {"gamma": -1.0}}, "agent.hyperparameters.gamma"),
    ({"eval_days": (250, 310)}, "agent.eval_days"),
    ({"shiftable_loads": -1}, "agent.shiftable_loads"),
    ({"grid": GridSource(simbench_code="x", grid_dataset_id="y")}, "agent.grid"),
])
def test_validate_names_the_field(changes, field):
    with pytest.raises(errors.InvalidArgument) as err:
        validate(spec(**changes))
    assert err.value.metadata["field"] == field, err.value.message


def test_the_state_machine_ends_once():
    a = agent(state=A.QUEUED, start_time=None, end_time=None)
    trained = a.moved(A.TRAINING, now=NOW)
    assert trained.start_time == NOW and trained.end_time is None
    failed = trained.moved(A.FAILED, now=NOW, failure_reason="why")
    assert failed.final and failed.end_time == NOW
    with pytest.raises(errors.FailedPrecondition):
        failed.moved(A.CANCELLED, now=NOW)


def test_a_day_plan_round_trips():
    plan = A.DayPlan(day=172, shifts=(A.Shift(3, 12, 13, 0.05, 0.001),),
                     before=A.DayFigures(0.4, 0.5, 0.45, "converged", 0), after=A.DayFigures(0.41, 0.5, 0.455,
                                                                                            "converged", 1),
                     greedy=A.DayFigures(0.42, 0.51, 0.465), loads=(A.LoadProfile(3, (1.0,) * 24, (0.5,) * 24),),
                     model_id="m", source="forecast (inline CSV)", forecast_sha256="c" * 64)
    assert conv.plan_from_proto(conv.plan_to_proto(plan)) == plan


@pytest.mark.parametrize("forecast", [A.Forecast(), A.Forecast(csv=b"load_p_mw:0\n0.1\n"),
                                      A.Forecast(dataset_id="6f1c2a4e-0000-4000-8000-000000000002")])
def test_a_forecast_round_trips(forecast):
    request = conv.forecast_to_proto(forecast, agent_id="a", day=3)
    assert conv.forecast_from_proto(request) == forecast and bool(forecast) == bool(request.WhichOneof("forecast"))


@pytest.mark.parametrize("algorithm", A.ALGORITHMS)
def test_every_algorithm_round_trips_and_passes_the_spec_check(algorithm):
    record = agent(algorithm=algorithm, hyperparameters={"gamma": 0.9})
    assert conv.agent_from_proto(conv.agent_to_proto(record)) == record
    assert validate(spec(algorithm=algorithm, hyperparameters={"gamma": 0.9})).algorithm == algorithm


def test_the_worker_spec_takes_a_training_power_flow_and_names_a_bad_one():
    from servers.optimizer.worker.spec import SpecError, parse

    raw = {"algorithm": "REINFORCE", "total_timesteps": 10, "train_days": [0, 5], "eval_days": [5, 6]}
    assert parse(raw).train_power_flow == "worst" and parse(raw).action_space == "discrete"
    assert parse({**raw, "train_power_flow": "none"}).train_power_flow == "none"
    with pytest.raises(SpecError) as err:
        parse({**raw, "train_power_flow": "sometimes"})
    assert err.value.field == "train_power_flow"
