"""Train, evaluate and save: the job the Optimizer runs in `.venv-rl`."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from servers.optimizer.gridshift import baselines
from servers.optimizer.gridshift.data import open_grid
from servers.optimizer.gridshift.env import GridShiftEnv
from servers.optimizer.worker.spec import JobSpec


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _algorithm(name: str):
    import stable_baselines3 as sb3

    return {"DQN": sb3.DQN, "PPO": sb3.PPO, "A2C": sb3.A2C}[name]


def make_env(spec: JobSpec, data, days: tuple[int, int], order: str) -> GridShiftEnv:
    return GridShiftEnv(data=data, days=range(*days), day_order=order, **spec.env_kwargs())


def _progress_callback(every_episodes: int = 1):
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def __init__(self):
            super().__init__()
            self.episodes = 0

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
                if done and "episode" in info:
                    self.episodes += 1
                    if self.episodes % every_episodes == 0:
                        emit("episode", episode=self.episodes, timesteps=int(self.num_timesteps),
                             reward=float(info["episode"]["r"]), scr=float(info["scr"]), ssr=float(info["ssr"]),
                             violations=int(info["violations"]))
            return True

    return Progress()


def evaluate(model, spec: JobSpec, data) -> dict[str, Any]:
    """The agent with `evaluate_policy` on every held-out day once, and the three baselines on
    the same days."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    days = list(range(*spec.eval_days))
    env = make_env(spec, data, spec.eval_days, "cycle")
    agent_eps: list[dict] = []
    totals = {"violations": 0}

    def collect(local: dict, _globals: dict) -> None:
        info = local["info"]
        totals["violations"] += int(info.get("violations", 0))
        if local["done"]:
            agent_eps.append({"day": int(info["day"]), "reward": (info["scr"] + info["ssr"]) / 2, "scr": info["scr"],
                              "ssr": info["ssr"], "violations": totals["violations"],
                              "per_bus": info.get("per_bus", [])})
            totals["violations"] = 0

    returns, _lengths = evaluate_policy(model, Monitor(env), n_eval_episodes=len(days), deterministic=True,
                                        return_episode_rewards=True, callback=collect)
    for ep, ret in zip(agent_eps, returns, strict=True):
        ep["return"] = float(ret)
    policies = {"no_shift": baselines.noop, "random": baselines.make_random(spec.seed), "greedy": baselines.greedy}
    report = {"days": days, "agent": {**baselines.summarize(agent_eps), "per_day": agent_eps}}
    probe = make_env(spec, data, spec.eval_days, "cycle")
    for name, policy in policies.items():
        eps = [baselines.run_episode(probe, policy, day=d) for d in days]
        report[name] = {**baselines.summarize(eps), "per_day": [{k: e[k] for k in (
            "day", "return", "reward", "scr", "ssr", "violations", "per_bus")} for e in eps]}
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"evaluation on {len(report['days'])} held-out days {report['days'][0]}..{report['days'][-1]}", flush=True)
    print(f"{'policy':<10} {'return':>16} {'reward':>16} {'SCR':>16} {'SSR':>16} {'violations':>12}", flush=True)
    for name in ("agent", "no_shift", "random", "greedy"):
        r = report[name]
        cells = " ".join(f"{r[k]['mean']:>8.4f} ±{r[k]['std']:.4f}" for k in ("return", "reward", "scr", "ssr"))
        print(f"{name:<10} {cells} {r['violations']['mean']:>12.2f}", flush=True)


def train(spec: JobSpec, out: Path) -> dict[str, Any]:
    import stable_baselines3
    import torch
    from stable_baselines3.common.monitor import Monitor

    started = time.monotonic()
    torch.set_num_threads(1)
    data = open_grid(spec.grid, spec.profiles or None)
    for name, (first, last) in (("train_days", spec.train_days), ("eval_days", spec.eval_days)):
        if last > data.days:
            raise SystemExit(f"{name}: [{first}, {last}) is beyond the profiles' {data.days} days")
    emit("state", state="TRAINING", grid=data.name, days=data.days)
    env = Monitor(make_env(spec, data, spec.train_days, "random"))
    env.reset(seed=spec.seed)
    model = _algorithm(spec.algorithm)("MlpPolicy", env, seed=spec.seed, verbose=0, device="cpu",
                                       **spec.hyperparameters)
    model.learn(total_timesteps=spec.total_timesteps, callback=_progress_callback())
    policy = out / "policy.zip"
    model.save(policy)
    emit("state", state="EVALUATING")
    report = evaluate(model, spec, data)
    print_table(report)
    result = {
        "algorithm": spec.algorithm, "library": f"stable-baselines3 {stable_baselines3.__version__}",
        "torch": torch.__version__, "python": platform.python_version(), "grid": data.name,
        "hyperparameters": spec.hyperparameters, "seed": spec.seed, "total_timesteps": spec.total_timesteps,
        "train_days": list(spec.train_days), "eval_days": list(spec.eval_days),
        "env": {"id": "mlmesh/GridShift-v0", **spec.env_kwargs()}, "evaluation": report,
        "seconds": time.monotonic() - started,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1, default=float))
    emit("done", policy=str(policy), result=str(out / "result.json"),
         agent_reward=report["agent"]["reward"]["mean"], greedy_reward=report["greedy"]["reward"]["mean"])
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    from servers.optimizer.gridshift.data import GridDataError
    from servers.optimizer.worker.spec import SpecError, parse

    parser = argparse.ArgumentParser(prog="python -m servers.optimizer.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and evaluate an agent from a job spec")
    t.add_argument("--spec", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        spec = parse(json.loads(args.spec.read_text()))
        args.out.mkdir(parents=True, exist_ok=True)
        train(spec, args.out)
    except (SpecError, GridDataError) as exc:
        emit("error", field=getattr(exc, "field", ""), message=str(exc))
        print(f"invalid job: {exc}", file=sys.stderr)
        return 2
    np.seterr(all="ignore")
    return 0
