"""The job spec the server hands the worker (JSON), checked here so a bad spec fails before any
training with a message naming the field."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Stable-Baselines3's three, then TorchRL's three (servers/optimizer/worker/torchrl_agents.py).
SB3_ALGORITHMS = ("DQN", "PPO", "A2C")
TORCHRL_ALGORITHMS = ("DOUBLE_DQN", "DUELING_DQN", "REINFORCE")
ALGORITHMS = SB3_ALGORITHMS + TORCHRL_ALGORITHMS
# Algorithms acting on the flattened discrete action (the rest take the multi-discrete one).
DISCRETE_ALGORITHMS = ("DQN", *TORCHRL_ALGORITHMS)
# Sizes (buffer, steps, batches) beyond this only exhaust memory or time before training starts.
MAX_INT_HYPERPARAMETER = 10**8
# Hyperparameters passed to the Stable-Baselines3 constructor, with the type each must have.
HYPERPARAMETERS: dict[str, dict[str, type]] = {
    "DQN": {"learning_rate": float, "gamma": float, "buffer_size": int, "learning_starts": int, "batch_size": int,
            "train_freq": int, "target_update_interval": int, "exploration_fraction": float,
            "exploration_final_eps": float},
    "PPO": {"learning_rate": float, "gamma": float, "n_steps": int, "batch_size": int, "n_epochs": int,
            "ent_coef": float, "clip_range": float, "gae_lambda": float},
    "A2C": {"learning_rate": float, "gamma": float, "n_steps": int, "ent_coef": float, "gae_lambda": float},
    "REINFORCE": {"learning_rate": float, "gamma": float, "episodes_per_batch": int},
}
# TorchRL's Double and Dueling DQN take the DQN names (same meaning).
HYPERPARAMETERS["DOUBLE_DQN"] = HYPERPARAMETERS["DUELING_DQN"] = HYPERPARAMETERS["DQN"]


class SpecError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class JobSpec:
    algorithm: str
    total_timesteps: int
    seed: int
    train_days: tuple[int, int]  # [first, last) day indexes of the profiles
    eval_days: tuple[int, int]
    grid: str = "1-LV-rural1--0-sw"  # a SimBench code, or a pandapower JSON path with `profiles`
    profiles: str = ""
    n_shiftable: int = 7
    max_actions: int = 24
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    reward: str = "level"  # or "gain": see servers/optimizer/gridshift/env.py
    # The power flow while training: "worst" (the environment's default) or "none" (about 200x
    # faster steps; violations are then not penalised in training). Evaluation and optimize
    # always run it.
    train_power_flow: str = "worst"

    @property
    def action_space(self) -> str:
        return "discrete" if self.algorithm in DISCRETE_ALGORITHMS else "multidiscrete"

    def env_kwargs(self) -> dict[str, Any]:
        return {"n_shiftable": self.n_shiftable, "max_actions": self.max_actions, "action_space": self.action_space,
                "reward": self.reward}


def _days(raw: Any, name: str) -> tuple[int, int]:
    if not isinstance(raw, list | tuple) or len(raw) != 2 or not all(isinstance(d, int) for d in raw):
        raise SpecError(name, "must be [first, last) day indexes")
    first, last = raw
    if not 0 <= first < last:
        raise SpecError(name, f"[{first}, {last}) is empty or negative")
    return first, last


def parse(raw: dict[str, Any]) -> JobSpec:
    algorithm = str(raw.get("algorithm", "")).upper()
    if algorithm not in ALGORITHMS:
        raise SpecError("algorithm", f"{raw.get('algorithm')!r} is not one of {', '.join(ALGORITHMS)}")
    steps = raw.get("total_timesteps")
    if not isinstance(steps, int) or steps < 1:
        raise SpecError("total_timesteps", "must be a positive integer")
    train, evaluation = _days(raw.get("train_days"), "train_days"), _days(raw.get("eval_days"), "eval_days")
    if train[0] < evaluation[1] and evaluation[0] < train[1]:
        raise SpecError("eval_days", f"{list(evaluation)} overlaps the training days {list(train)}: evaluation "
                                     "days must be held out")
    hyper = dict(raw.get("hyperparameters") or {})
    allowed = HYPERPARAMETERS[algorithm]
    for key, value in hyper.items():
        if key not in allowed:
            raise SpecError(f"hyperparameters.{key}", f"not a {algorithm} hyperparameter here "
                                                      f"(one of {', '.join(sorted(allowed))})")
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise SpecError(f"hyperparameters.{key}", "must be a finite non-negative number")
        if allowed[key] is int and int(value) != value:
            raise SpecError(f"hyperparameters.{key}", "must be an integer")
        if allowed[key] is int and value > MAX_INT_HYPERPARAMETER:
            raise SpecError(f"hyperparameters.{key}", f"must be at most {MAX_INT_HYPERPARAMETER}")
        hyper[key] = allowed[key](value)
    n_shiftable, max_actions = raw.get("n_shiftable", 7), raw.get("max_actions", 24)
    if not isinstance(n_shiftable, int) or n_shiftable < 1:
        raise SpecError("n_shiftable", "must be a positive integer")
    if not isinstance(max_actions, int) or not 1 <= max_actions <= 1000:
        raise SpecError("max_actions", "must be between 1 and 1000")
    reward = raw.get("reward", "level")
    if reward not in ("level", "gain"):
        raise SpecError("reward", "must be 'level' or 'gain'")
    train_power_flow = raw.get("train_power_flow", "worst")
    if train_power_flow not in ("worst", "changed", "none"):
        raise SpecError("train_power_flow", "must be 'worst', 'changed' or 'none'")
    return JobSpec(algorithm=algorithm, reward=reward, total_timesteps=steps, seed=int(raw.get("seed", 0)),
                   train_days=train,
                   eval_days=evaluation, grid=str(raw.get("grid") or "1-LV-rural1--0-sw"),
                   profiles=str(raw.get("profiles") or ""), n_shiftable=n_shiftable, max_actions=max_actions,
                   hyperparameters=hyper, train_power_flow=train_power_flow)
