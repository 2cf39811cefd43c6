"""The seed's Double DQN, Dueling DQN and policy-gradient (REINFORCE) agents, built from TorchRL 0.14.

Stable-Baselines3 has none of the three, so they come from TorchRL's own parts: the losses are
TorchRL's (`DQNLoss(double_dqn=True)`, `DQNLoss` over a `DuelingMlpDQNet`, `ReinforceLoss` with a
learned value baseline and TorchRL's TD(1) estimator, i.e. the Monte-Carlo return of the day), the
Q-value actor, epsilon-greedy exploration, replay buffer and target-network updates too. What is
written here is only the loop that plays the Gymnasium environment and feeds those parts.

An agent answers `predict(obs, deterministic=True)` like a Stable-Baselines3 model, so the worker's
evaluation (`evaluate_policy`) and `optimize` use it unchanged. `save` writes one file with
`torch.save` (a zip archive of the network's state and its settings); `load` rebuilds the network
and reads it back with `weights_only=True` (no pickled code is executed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ALGORITHMS = ("DOUBLE_DQN", "DUELING_DQN", "REINFORCE")

DQN_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-4, "gamma": 0.99, "buffer_size": 100_000, "learning_starts": 100,
                                "batch_size": 32, "train_freq": 4, "target_update_interval": 1000,
                                "exploration_fraction": 0.1, "exploration_final_eps": 0.05}
REINFORCE_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-3, "gamma": 0.99, "episodes_per_batch": 4}
FORMAT = "mlmesh-torchrl-policy/1"


def defaults(algorithm: str) -> dict[str, Any]:
    return dict(REINFORCE_DEFAULTS if algorithm == "REINFORCE" else DQN_DEFAULTS)


def _networks(algorithm: str, n_obs: int, n_actions: int):
    """The trainable network(s): a Q-network for the DQN variants, logits + value for REINFORCE."""
    import torch
    from torchrl.modules import MLP
    from torchrl.modules.models import DuelingMlpDQNet

    if algorithm == "DUELING_DQN":
        net = DuelingMlpDQNet(n_actions, mlp_kwargs_feature={"num_cells": [256], "out_features": 256},
                              mlp_kwargs_output={"num_cells": 256})
        net(torch.zeros(1, n_obs))  # materialise its lazy layers, so a state dict loads into it
        return {"q": net}
    if algorithm == "DOUBLE_DQN":
        return {"q": MLP(in_features=n_obs, out_features=n_actions, num_cells=[256, 256])}
    return {"policy": MLP(in_features=n_obs, out_features=n_actions, num_cells=[256, 256]),
            "value": MLP(in_features=n_obs, out_features=1, num_cells=[256])}


class TorchRLAgent:
    """A trained (or training) TorchRL agent over the flattened discrete action space."""

    def __init__(self, algorithm: str, n_obs: int, n_actions: int, hyperparameters: dict[str, Any], seed: int = 0):
        import torch

        if algorithm not in ALGORITHMS:
            raise ValueError(f"{algorithm} is not one of {', '.join(ALGORITHMS)}")
        torch.manual_seed(seed)
        # plain Python numbers: the saved file is read back with weights_only=True
        self.algorithm, self.n_obs, self.n_actions, self.seed = algorithm, int(n_obs), int(n_actions), int(seed)
        self.hyperparameters = {k: int(v) if isinstance(v, int | np.integer) else float(v)
                                for k, v in {**defaults(algorithm), **hyperparameters}.items()}
        self.nets = _networks(algorithm, self.n_obs, self.n_actions)

    # -- acting ---------------------------------------------------------------------------------------
    def _scores(self, obs) -> Any:
        import torch

        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        single = x.dim() == 1
        with torch.no_grad():
            out = self.nets["q" if "q" in self.nets else "policy"](x.unsqueeze(0) if single else x)
        return out[0] if single else out

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """Stable-Baselines3's signature: the greedy action (argmax Q, or the most likely action)
        for one observation or a batch; sampling from REINFORCE's policy when not deterministic."""
        import torch

        scores = self._scores(observation)
        if deterministic or self.algorithm != "REINFORCE":
            action = scores.argmax(dim=-1)
        else:
            action = torch.distributions.Categorical(logits=scores).sample()
        return action.numpy(), state

    # -- training -------------------------------------------------------------------------------------
    def learn(self, env, total_timesteps: int, on_episode: Callable[[dict[str, Any]], None]) -> None:
        """Trains on `env` (a GridShiftEnv with the discrete action space) for `total_timesteps`
        steps, calling `on_episode` with each finished day's figures."""
        import torch

        torch.set_num_threads(1)
        if self.algorithm == "REINFORCE":
            self._learn_reinforce(env, total_timesteps, on_episode)
        else:
            self._learn_dqn(env, total_timesteps, on_episode)

    def _learn_dqn(self, env, total_timesteps: int, on_episode) -> None:
        import torch
        from tensordict import TensorDict
        from tensordict.nn import TensorDictSequential
        from torchrl.data import Categorical, LazyTensorStorage, ReplayBuffer
        from torchrl.data.replay_buffers.samplers import RandomSampler
        from torchrl.modules import EGreedyModule, QValueActor
        from torchrl.objectives import DQNLoss, HardUpdate

        h = self.hyperparameters
        spec = Categorical(self.n_actions)
        actor = QValueActor(self.nets["q"], in_keys=["observation"], spec=spec)
        anneal = max(1, int(h["exploration_fraction"] * total_timesteps))
        explore = TensorDictSequential(actor, EGreedyModule(spec, eps_init=1.0, eps_end=h["exploration_final_eps"],
                                                            annealing_num_steps=anneal))
        loss = DQNLoss(actor, double_dqn=self.algorithm == "DOUBLE_DQN", delay_value=True, action_space=spec)
        loss.make_value_estimator(gamma=h["gamma"])
        target = HardUpdate(loss, value_network_update_interval=h["target_update_interval"])
        optimizer = torch.optim.Adam(loss.parameters(), lr=h["learning_rate"])
        generator = torch.Generator().manual_seed(self.seed)
        buffer = ReplayBuffer(storage=LazyTensorStorage(h["buffer_size"]), sampler=RandomSampler(),
                              batch_size=h["batch_size"], generator=generator)
        obs, _ = env.reset(seed=self.seed)
        episode = _Episode()
        for step in range(1, total_timesteps + 1):
            td = TensorDict({"observation": torch.as_tensor(obs)}, batch_size=[])
            with torch.no_grad():
                action = int(explore(td)["action"])
            explore[-1].step()
            obs, reward, terminated, truncated, info = env.step(action)
            buffer.extend(_transition(td["observation"], action, reward, obs, terminated, truncated).unsqueeze(0))
            episode.add(reward, info)
            if step > h["learning_starts"] and step % h["train_freq"] == 0:
                batch = buffer.sample()
                optimizer.zero_grad()
                loss(batch)["loss"].backward()
                torch.nn.utils.clip_grad_norm_(loss.parameters(), 10.0)
                optimizer.step()
                target.step()
            if terminated or truncated:
                on_episode(episode.figures(step))
                episode = _Episode()
                obs, _ = env.reset()

    def _learn_reinforce(self, env, total_timesteps: int, on_episode) -> None:
        import torch
        from torchrl.modules import ValueOperator
        from torchrl.objectives import ReinforceLoss
        from torchrl.objectives import ValueEstimators

        h = self.hyperparameters
        actor = scoring_actor(self.nets["policy"])
        critic = ValueOperator(self.nets["value"], in_keys=["observation"])
        loss = ReinforceLoss(actor, critic)
        loss.make_value_estimator(ValueEstimators.TD1, gamma=h["gamma"])
        optimizer = torch.optim.Adam(loss.parameters(), lr=h["learning_rate"])
        generator = torch.Generator().manual_seed(self.seed)
        obs, _ = env.reset(seed=self.seed)
        step, days = 0, []
        while step < total_timesteps:
            rows, episode, done = [], _Episode(), False
            while not done:
                x = torch.as_tensor(obs)
                with torch.no_grad():
                    dist = torch.distributions.Categorical(logits=self.nets["policy"](x))
                    action = int(torch.multinomial(dist.probs, 1, generator=generator))
                obs, reward, terminated, truncated, info = env.step(action)
                step += 1
                done = terminated or truncated
                rows.append(_transition(x, action, reward, obs, terminated, truncated))
                episode.add(reward, info)
            on_episode(episode.figures(step))
            days.append(torch.stack(rows))
            obs, _ = env.reset()
            if len(days) >= h["episodes_per_batch"] or step >= total_timesteps:
                batch = torch.stack(days)  # [days, steps]: every day has the same number of actions
                days = []
                optimizer.zero_grad()
                out = loss(batch)
                (out["loss_actor"] + out["loss_value"]).backward()
                torch.nn.utils.clip_grad_norm_(loss.parameters(), 10.0)
                optimizer.step()

    # -- storing --------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        import torch

        torch.save({"format": FORMAT, "algorithm": self.algorithm, "n_obs": self.n_obs, "n_actions": self.n_actions,
                    "hyperparameters": self.hyperparameters, "seed": self.seed,
                    "state": {name: net.state_dict() for name, net in self.nets.items()}}, path)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> TorchRLAgent:
        import torch

        saved = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError(f"{path} is not an mlmesh TorchRL policy")
        agent = cls(saved["algorithm"], int(saved["n_obs"]), int(saved["n_actions"]), saved["hyperparameters"],
                    int(saved["seed"]))
        for name, net in agent.nets.items():
            net.load_state_dict(saved["state"][name])
            net.eval()
        return agent


def scoring_actor(policy):
    """REINFORCE's actor as TorchRL's ReinforceLoss needs it here. The loss runs the actor on the
    batch, and a ProbabilisticActor would draw a fresh action there; with the stored action passed
    through before the distribution, the sequence only computes the taken action's log-probability
    (`action_log_prob`)."""
    import torch
    from tensordict.nn import ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential, TensorDictModule

    return ProbabilisticTensorDictSequential(
        TensorDictModule(policy, in_keys=["observation"], out_keys=["logits"]),
        TensorDictModule(_same, in_keys=["action"], out_keys=["action"]),
        ProbabilisticTensorDictModule(in_keys=["logits"], out_keys=["action"],
                                      distribution_class=torch.distributions.Categorical, return_log_prob=True))


def _same(x):
    return x


class _Episode:
    def __init__(self):
        self.ret, self.violations, self.info = 0.0, 0, {}

    def add(self, reward: float, info: dict) -> None:
        self.ret += float(reward)
        self.violations += int(info.get("violations", 0))
        self.info = info

    def figures(self, timesteps: int) -> dict[str, Any]:
        return {"timesteps": timesteps, "reward": self.ret, "scr": float(self.info.get("scr", 0.0)),
                "ssr": float(self.info.get("ssr", 0.0)), "violations": self.violations}


def _transition(obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool):
    """One step in TorchRL's layout: the observation and action, and under "next" what followed."""
    import torch
    from tensordict import TensorDict

    done = bool(terminated or truncated)
    return TensorDict({
        "observation": torch.as_tensor(obs, dtype=torch.float32),
        "action": torch.tensor(action, dtype=torch.int64),
        "next": {"observation": torch.as_tensor(next_obs, dtype=torch.float32),
                 "reward": torch.tensor([float(reward)], dtype=torch.float32),
                 "done": torch.tensor([done]), "terminated": torch.tensor([bool(terminated)]),
                 "truncated": torch.tensor([bool(truncated)])},
    }, batch_size=[])
