"""The Optimizer's worker as the server runs it: a separate process in .venv-rl, each algorithm
trained for a few hundred steps on the real environment, evaluated beside the baselines."""

import json
import subprocess
import sys

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
