"""The Optimizer's worker as the server runs it: a separate process in .venv-rl, each algorithm
trained for a few hundred steps on the real environment, evaluated beside the baselines."""

import json
import subprocess
import sys

import numpy as np
import pytest

from servers.optimizer.worker.spec import SpecError, parse

BASE = {"total_timesteps": 200, "seed": 5, "train_days": [150, 165], "eval_days": [170, 173], "max_actions": 6}
HYPER = {"DQN": {"learning_starts": 50, "buffer_size": 1000, "batch_size": 16},
         "PPO": {"n_steps": 48, "batch_size": 16}, "A2C": {"n_steps": 6}}


@pytest.mark.parametrize("algorithm", ["DQN", "PPO", "A2C"])
def test_each_algorithm_trains_evaluates_and_saves(tmp_path, algorithm):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**BASE, "algorithm": algorithm, "hyperparameters": HYPER[algorithm]}))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "servers.optimizer.worker", "train", "--spec", str(spec),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    episodes = [e for e in events if e["event"] == "episode"]
    # one progress line per finished training episode (PPO/A2C round up to whole rollouts)
    assert len(episodes) >= 200 // 6
    assert [e["timesteps"] for e in episodes] == [6 * (i + 1) for i in range(len(episodes))]
    assert all(0 <= e["scr"] <= 1 and 0 <= e["ssr"] <= 1 for e in episodes)
    assert "agent " in done.stdout and "greedy " in done.stdout  # the printed comparison table
    result = json.loads((out / "result.json").read_text())
    assert result["evaluation"]["days"] == [170, 171, 172]
    for policy in ("agent", "no_shift", "random", "greedy"):
        assert result["evaluation"][policy]["episodes"] == 3
        assert len(result["evaluation"][policy]["per_bus"]) == 4  # the four PV buses
        assert [d["day"] for d in result["evaluation"][policy]["per_day"]] == [170, 171, 172]
    assert result["library"].startswith("stable-baselines3 2.9")

    import stable_baselines3 as sb3
    model = getattr(sb3, algorithm).load(out / "policy.zip", device="cpu")
    assert model.observation_space.shape == (7 * 24 + 24 + 24 + 1,)

    # the stored policy plans a held-out day within the seed's constraints
    plan_file = tmp_path / "plan.json"
    done = subprocess.run([sys.executable, "-m", "servers.optimizer.worker", "optimize", "--spec", str(spec),
                           "--policy", str(out / "policy.zip"), "--day", "172", "--out", str(plan_file)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "power flow, 96 quarter hours: before converged" in done.stdout
    plan = json.loads(plan_file.read_text())
    assert len(plan["plan"]) <= 6
    for shift in plan["plan"]:
        assert abs(shift["to_hour"] - shift["from_hour"]) == 1 and shift["fraction"] in (0.01, 0.05, 0.1)
    before, after = np.array(plan["hourly_mwh_before"]), np.array(plan["hourly_mwh_after"])
    np.testing.assert_allclose(after.sum(axis=1), before.sum(axis=1), rtol=0, atol=1e-9)
    assert plan["after"]["power_flow"]["status"] == "converged"
    assert 0 <= plan["after"]["scr"] <= 1 and plan["greedy"]["reward"] >= plan["before"]["reward"]


def test_a_bad_spec_fails_before_training_naming_the_field(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**BASE, "algorithm": "SARSA"}))
    done = subprocess.run([sys.executable, "-m", "servers.optimizer.worker", "train", "--spec", str(spec),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert json.loads(done.stdout.splitlines()[-1])["field"] == "algorithm"


@pytest.mark.parametrize(("change", "field"), [
    ({"algorithm": "sarsa"}, "algorithm"),
    ({"eval_days": [160, 170]}, "eval_days"),
    ({"train_days": [5, 5]}, "train_days"),
    ({"total_timesteps": 0}, "total_timesteps"),
    ({"hyperparameters": {"n_steps": 10}}, "hyperparameters.n_steps"),  # a PPO knob given to DQN
    ({"hyperparameters": {"batch_size": 1.5}}, "hyperparameters.batch_size"),
    ({"max_actions": 0}, "max_actions"),
    ({"reward": "profit"}, "reward"),
])
def test_spec_errors_name_the_field(change, field):
    with pytest.raises(SpecError) as err:
        parse({**BASE, "algorithm": "DQN", **change})
    assert err.value.field == field
