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


@pytest.mark.parametrize("algorithm", ["DOUBLE_DQN", "DUELING_DQN", "REINFORCE"])
def test_torchrl_agents_learn_save_and_load_back(grid, tmp_path, algorithm):
    """TorchRL's three (in process: the server path is tests/integration/test_optimizer.py): a few
    hundred steps through TorchRL's losses change the network, every finished day is reported, and
    the saved policy loads back acting exactly as before."""
    import torch

    from servers.optimizer.gridshift.env import GridShiftEnv
    from servers.optimizer.worker.torchrl_agents import TorchRLAgent

    env = GridShiftEnv(data=grid, days=range(150, 165), max_actions=6)
    hyper = {"learning_starts": 30, "batch_size": 16, "target_update_interval": 50} if "DQN" in algorithm \
        else {"episodes_per_batch": 2}
    agent = TorchRLAgent(algorithm, env.observation_space.shape[0], env.action_space.n, hyper, seed=4)
    first = {k: v.clone() for net in agent.nets.values() for k, v in net.state_dict().items()}
    days: list[dict] = []
    agent.learn(env, 240, days.append)
    assert [d["timesteps"] for d in days] == [6 * (i + 1) for i in range(40)]
    assert all(0 <= d["scr"] <= 1 and 0 <= d["ssr"] <= 1 for d in days)
    after = {k: v for net in agent.nets.values() for k, v in net.state_dict().items()}
    assert any(not torch.equal(first[k], after[k]) for k in first)  # the loss trained something

    agent.save(tmp_path / "policy.zip")
    loaded = TorchRLAgent.load(tmp_path / "policy.zip")
    obs = np.stack([env.reset(options={"day": d})[0] for d in (170, 171, 172)])
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    assert all(0 <= a < env.action_space.n for a in loaded.predict(obs)[0])
    with pytest.raises(ValueError, match="not an mlmesh TorchRL policy"):
        torch.save({"format": "other"}, tmp_path / "other.zip")
        TorchRLAgent.load(tmp_path / "other.zip")


def test_reinforce_scores_the_action_taken_not_a_fresh_sample():
    """ReinforceLoss runs its actor on the batch: the log-probability must be the stored action's."""
    import torch
    from tensordict import TensorDict
    from torchrl.modules import MLP

    from servers.optimizer.worker.torchrl_agents import scoring_actor

    torch.manual_seed(0)
    policy = MLP(in_features=5, out_features=40, num_cells=[16])
    obs, action = torch.randn(3, 8, 5), torch.randint(0, 40, (3, 8))
    scored = scoring_actor(policy)(TensorDict({"observation": obs, "action": action}, batch_size=[3, 8]))
    assert torch.equal(scored["action"], action)
    expected = torch.distributions.Categorical(logits=policy(obs)).log_prob(action)
    torch.testing.assert_close(scored["action_log_prob"], expected)


def test_the_learning_curve_plot_writes_a_png(tmp_path):
    """make demo-optimizer's plot: two agents' training days as a PNG (matplotlib, Agg)."""
    from servers.optimizer.worker import plot

    days = [{"episode": i + 1, "timesteps": 24 * (i + 1), "episode_return": 0.01 * i, "scr": 0.5, "ssr": 0.4}
            for i in range(30)]
    (tmp_path / "curves.json").write_text(json.dumps({"PPO": days, "DQN": days[:10]}))
    assert plot.main(["--episodes", str(tmp_path / "curves.json"), "--out", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.moving_average(np.arange(5.0), 2).tolist() == [0.5, 1.5, 2.5, 3.5]
