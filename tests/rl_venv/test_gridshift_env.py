"""The environment's invariants on the default SimBench grid, with real pandapower power flows."""

import copy

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers.optimizer.gridshift import baselines
from servers.optimizer.gridshift.data import GridData, GridDataError, read_grid_json, read_profiles, write_files
from servers.optimizer.gridshift.env import FRACTIONS, QUARTERS, GridShiftEnv, Shift, self_consumption

from .conftest import SUMMER_DAY

SHIFTS = st.builds(Shift, load=st.integers(0, 6), hour=st.integers(0, 23), fraction=st.sampled_from(FRACTIONS),
                   direction=st.sampled_from(("previous", "next")))
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("kind", ["discrete", "multidiscrete"])
def test_check_env_passes(grid, kind):
    check_env(GridShiftEnv(data=grid, days=[SUMMER_DAY, 100], action_space=kind, max_actions=4),
              skip_render_check=True)


def test_registered_id_makes_the_environment(grid):
    env = gymnasium.make("mlmesh/GridShift-v0", data=grid, days=[SUMMER_DAY])
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    assert info["day"] == SUMMER_DAY
    assert 0.40 < info["scr"] < 0.48 and 0.48 < info["ssr"] < 0.56  # the figures the issue quotes


def test_seven_largest_loads_are_shiftable(grid):
    env = GridShiftEnv(data=grid, n_shiftable=7)
    energy = grid.load_p.sum(axis=0)
    assert sorted(energy[list(env.shiftable)]) == sorted(np.sort(energy)[-7:])
    assert GridShiftEnv(data=grid, n_shiftable=3).action_space.n == 3 * 24 * 3 * 2


@FAST
@given(shifts=st.lists(SHIFTS, min_size=1, max_size=12))
def test_daily_energy_per_load_is_conserved_and_reward_in_unit_interval(env, shifts):
    env.reset(options={"day": SUMMER_DAY})
    before = env.original_profiles
    for shift in shifts:
        _obs, reward, _term, _trunc, info = env.step(env.encode(shift))
        assert 0.0 <= info["reward_raw"] <= 1.0
        assert reward == pytest.approx(info["reward_raw"] - info["penalty"])
    after = env.profiles
    np.testing.assert_allclose(after.sum(axis=0), before.sum(axis=0), rtol=0, atol=1e-9)
    assert np.all(after >= 0)


@FAST
@given(shift=SHIFTS)
def test_a_shift_changes_only_two_adjacent_hours_of_one_load(env, shift):
    env.reset(options={"day": SUMMER_DAY})
    before = env.hourly()
    _obs, _r, _t, _tr, info = env.step(env.encode(shift))
    changed = np.argwhere(np.abs(env.hourly() - before) > 1e-15)
    if not info["shift"]["applied"]:
        assert len(changed) == 0
        assert shift.to_hour in (-1, 24) or before[shift.hour, env.shiftable[shift.load]] == 0
        return
    assert set(changed[:, 1]) == {env.shiftable[shift.load]}
    assert set(changed[:, 0]) == {shift.hour, shift.to_hour}
    col = env.shiftable[shift.load]
    moved = before[shift.hour, col] * shift.fraction
    assert env.hourly()[shift.to_hour, col] == pytest.approx(before[shift.to_hour, col] + moved, abs=1e-12)
    assert info["shift"]["energy_mwh"] == pytest.approx(moved, abs=1e-12)


def test_the_seed_example_ten_percent_of_an_hour(env):
    env.reset(options={"day": SUMMER_DAY})
    col = env.shiftable[0]
    before = env.hourly()[8, col]
    env.step(env.encode(Shift(load=0, hour=8, fraction=0.10, direction="next")))
    assert env.hourly()[8, col] == pytest.approx(0.9 * before)
    assert env.hourly()[9, col] - env.original_profiles[9 * QUARTERS:10 * QUARTERS, col].sum() * 0.25 == \
        pytest.approx(0.1 * before)


def test_reward_is_the_mean_of_scr_and_ssr_with_standard_definitions():
    load = np.array([1.0, 1.0, 2.0, 0.0])
    pv = np.array([0.0, 2.0, 1.0, 1.0])
    scr, ssr, e_self = self_consumption(load, pv)
    assert e_self == pytest.approx((0 + 1 + 1 + 0) * 0.25)
    assert scr == pytest.approx(2 / 4)  # self-consumed / produced
    assert ssr == pytest.approx(2 / 4)  # self-consumed / consumed
    assert self_consumption(load, np.zeros(4))[:2] == (0.0, 0.0)


@FAST
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6))
def test_same_seed_same_days_and_trajectory(grid, seed, n):
    runs = []
    for _ in range(2):
        env = GridShiftEnv(data=grid, days=range(150, 200), max_actions=n, power_flow="none")
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        trace = [info["day"], obs.tobytes()]
        for _ in range(n):
            obs, reward, *_ = env.step(env.action_space.sample())
            trace += [obs.tobytes(), reward]
        runs.append(trace)
    assert runs[0] == runs[1]


def test_an_episode_ends_after_max_actions(env):
    env.reset(options={"day": SUMMER_DAY})
    ends = [env.step(0)[2] for _ in range(env.max_actions)]
    assert ends == [False] * (env.max_actions - 1) + [True]
    with pytest.raises(RuntimeError):
        env.step(0)


def test_a_power_flow_that_does_not_converge_is_a_penalty_and_a_reason(grid):
    heavy = GridData(net=grid.net, load_p=grid.load_p * 500, load_q=grid.load_q * 500, sgen_p=grid.sgen_p,
                     load_index=grid.load_index, sgen_index=grid.sgen_index, name="overloaded")
    env = GridShiftEnv(data=heavy, days=[SUMMER_DAY], divergence_penalty=1.0)
    env.reset()
    _obs, reward, terminated, _tr, info = env.step(env.encode(Shift(0, 12, 0.1, "next")))
    assert info["power_flow"].startswith("not converged: quarter hour")
    assert reward == pytest.approx(info["reward_raw"] - 1.0 - 0.1 * info["violations"])
    assert not terminated
    # the whole-day check says so too, per quarter hour, without raising
    assert env.check_day()["status"].startswith("not converged")


def test_violations_are_counted_on_a_stressed_grid(grid):
    tight = copy.deepcopy(grid.net)
    tight.bus["min_vm_pu"] = 1.02  # most buses sit just below 1.025 pu
    data = GridData(net=tight, load_p=grid.load_p, load_q=grid.load_q, sgen_p=grid.sgen_p,
                    load_index=grid.load_index, sgen_index=grid.sgen_index, name="tight band")
    env = GridShiftEnv(data=data, days=[SUMMER_DAY], violation_penalty=0.1)
    env.reset()
    check = env.check_day()
    assert check["status"] == "converged" and check["voltage"] > 0
    _obs, reward, *_rest, info = env.step(env.encode(Shift(0, 19, 0.1, "next")))
    assert reward == pytest.approx(info["reward_raw"] - 0.1 * info["violations"])


def test_greedy_beats_doing_nothing_on_a_summer_day(grid):
    env = GridShiftEnv(data=grid, days=[SUMMER_DAY], max_actions=24)
    nothing = baselines.run_episode(env, baselines.noop, day=SUMMER_DAY)
    greedy = baselines.run_episode(env, baselines.greedy, day=SUMMER_DAY)
    assert nothing["reward"] == pytest.approx((nothing["scr_before"] + nothing["ssr_before"]) / 2)
    assert greedy["reward"] > nothing["reward"]
    assert greedy["violations"] == 0 and len(greedy["plan"]) == 24


def test_files_round_trip_and_bad_input_names_the_field(grid, tmp_path):
    grid_json, profiles = tmp_path / "grid.json", tmp_path / "profiles.csv"
    small = GridData(net=grid.net, load_p=grid.load_p[:192], load_q=grid.load_q[:192], sgen_p=grid.sgen_p[:192],
                     load_index=grid.load_index, sgen_index=grid.sgen_index, name="two days")
    write_files(small, grid_json, profiles)
    back = read_profiles(read_grid_json(grid_json.read_bytes()), profiles)
    np.testing.assert_allclose(back.load_p, small.load_p, rtol=1e-8)
    assert back.days == 2
    with pytest.raises(GridDataError) as err:
        read_grid_json(b'{"not": "a grid"}')
    assert err.value.field == "grid"
    lines = profiles.read_text().splitlines()
    with pytest.raises(GridDataError, match="not a whole number of days") as err:
        read_profiles(back.net, "\n".join(lines[:100]))
    assert err.value.field == "profiles"
    with pytest.raises(GridDataError, match="load_p_mw:0"):
        read_profiles(back.net, "time\n" + "1\n" * 96)
    with pytest.raises(GridDataError) as err:
        GridShiftEnv(data=back, days=[5])
    assert err.value.field == "days"


def test_simbench_grids_are_cached_and_a_broken_cache_is_read_again(grid, tmp_path, monkeypatch):
    from servers.optimizer.gridshift import data as gridshift_data

    monkeypatch.setenv("MLMESH_GRIDSHIFT_CACHE", str(tmp_path))
    gridshift_data._simbench.cache_clear()
    try:
        fresh = gridshift_data.simbench_grid()  # read from SimBench, then written to the cache
        files = sorted(p.suffix for p in tmp_path.iterdir())
        assert files == [".json", ".npz"]
        gridshift_data._simbench.cache_clear()
        cached = gridshift_data.simbench_grid()
        np.testing.assert_array_equal(cached.load_p, fresh.load_p)
        np.testing.assert_array_equal(cached.sgen_p, grid.sgen_p)
        assert cached.load_index == fresh.load_index and len(cached.net.bus) == len(fresh.net.bus)
        next(tmp_path.glob("*.npz")).write_bytes(b"torn")
        gridshift_data._simbench.cache_clear()
        again = gridshift_data.simbench_grid()
        np.testing.assert_array_equal(again.load_p, fresh.load_p)
    finally:
        gridshift_data._simbench.cache_clear()


@FAST
@given(shifts=st.lists(SHIFTS, min_size=1, max_size=8))
def test_gain_rewards_add_up_to_the_days_gain(grid, shifts):
    env = GridShiftEnv(data=grid, days=[SUMMER_DAY], max_actions=8, reward="gain", power_flow="none")
    _obs, info = env.reset()
    start, total = info["reward_raw"], 0.0
    for shift in shifts:
        _obs, reward, *_rest, info = env.step(env.encode(shift))
        total += reward
    assert total == pytest.approx(100 * (info["reward_raw"] - start), abs=1e-9)


def test_the_last_step_reports_scr_and_ssr_per_pv_bus(grid):
    env = GridShiftEnv(data=grid, days=[SUMMER_DAY], max_actions=2, power_flow="none")
    env.reset()
    assert "per_bus" not in env.step(0)[4]
    per_bus = env.step(0)[4]["per_bus"]
    assert [b["bus"] for b in per_bus] == sorted(set(int(b) for b in grid.net.sgen.bus))
    assert all(0 <= b["scr"] <= 1 and 0 <= b["ssr"] <= 1 for b in per_bus)
    summary = baselines.summarize([baselines.run_episode(env, baselines.greedy, day=SUMMER_DAY)])
    assert [b["bus"] for b in summary["per_bus"]] == [b["bus"] for b in per_bus]


def test_a_forecast_day_is_played_with_the_trained_shiftable_loads(grid):
    """reset(options={"profiles": ...}) plays a one-day forecast instead of a day of the data; the
    shiftable loads stay those chosen on the whole profiles; a wrong shape names the field."""
    import dataclasses

    env = GridShiftEnv(data=grid, days=[0], max_actions=3)
    rows = slice(172 * 96, 173 * 96)
    forecast = dataclasses.replace(grid, load_p=grid.load_p[rows] * 1.1, load_q=grid.load_q[rows],
                                   sgen_p=grid.sgen_p[rows])
    shiftable = env.shiftable
    _obs, info = env.reset(options={"profiles": forecast})
    assert info["day"] == -1 and env.shiftable == shiftable
    np.testing.assert_allclose(env.original_profiles, grid.load_p[rows] * 1.1)
    _obs, day_info = GridShiftEnv(data=grid, days=[172], max_actions=3).reset(options={"day": 172})
    assert info["ssr"] < day_info["ssr"]  # more load, same PV
    short = dataclasses.replace(forecast, load_p=forecast.load_p[:50])
    with pytest.raises(GridDataError, match="profiles"):
        env.reset(options={"profiles": short})
