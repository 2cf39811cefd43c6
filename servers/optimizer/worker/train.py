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
from servers.optimizer.gridshift.data import STEPS_PER_DAY, GridDataError, open_grid
from servers.optimizer.gridshift.env import GridShiftEnv
from servers.optimizer.worker.spec import TORCHRL_ALGORITHMS, JobSpec


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _algorithm(name: str):
    """The class with SB3's `load(path, device=)`: Stable-Baselines3's, or the TorchRL agent."""
    if name in TORCHRL_ALGORITHMS:
        from servers.optimizer.worker.torchrl_agents import TorchRLAgent

        return TorchRLAgent
    import stable_baselines3 as sb3

    return {"DQN": sb3.DQN, "PPO": sb3.PPO, "A2C": sb3.A2C}[name]


def _build_and_learn(spec: JobSpec, env) -> tuple[Any, str]:
    """Builds the agent from the spec, trains it, and names the library that did."""
    if spec.algorithm in TORCHRL_ALGORITHMS:
        import torchrl

        from servers.optimizer.worker.torchrl_agents import TorchRLAgent

        agent = TorchRLAgent(spec.algorithm, int(env.observation_space.shape[0]), int(env.action_space.n),
                             spec.hyperparameters, spec.seed)
        episodes = iter(range(1, 1 << 62))
        agent.learn(env, spec.total_timesteps, lambda ep: emit("episode", episode=next(episodes), **ep))
        return agent, f"torchrl {torchrl.__version__}"
    import stable_baselines3
    from stable_baselines3.common.monitor import Monitor

    model = _algorithm(spec.algorithm)("MlpPolicy", Monitor(env), seed=spec.seed, verbose=0, device="cpu",
                                       **spec.hyperparameters)
    model.learn(total_timesteps=spec.total_timesteps, callback=_progress_callback())
    return model, f"stable-baselines3 {stable_baselines3.__version__}"


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
    import torch

    started = time.monotonic()
    torch.set_num_threads(1)
    data = open_grid(spec.grid, spec.profiles or None)
    for name, (first, last) in (("train_days", spec.train_days), ("eval_days", spec.eval_days)):
        if last > data.days:
            raise SystemExit(f"{name}: [{first}, {last}) is beyond the profiles' {data.days} days")
    emit("state", state="TRAINING", grid=data.name, days=data.days)
    env = GridShiftEnv(data=data, days=range(*spec.train_days), day_order="random",
                       power_flow=spec.train_power_flow, **spec.env_kwargs())
    env.reset(seed=spec.seed)
    model, library = _build_and_learn(spec, env)
    policy = out / "policy.zip"
    model.save(policy)
    emit("state", state="EVALUATING")
    report = evaluate(model, spec, data)
    print_table(report)
    result = {
        "algorithm": spec.algorithm, "library": library,
        "torch": torch.__version__, "python": platform.python_version(), "grid": data.name,
        "hyperparameters": spec.hyperparameters, "seed": spec.seed, "total_timesteps": spec.total_timesteps,
        "train_days": list(spec.train_days), "eval_days": list(spec.eval_days),
        "env": {"id": "mlmesh/GridShift-v0", **spec.env_kwargs(), "train_power_flow": spec.train_power_flow},
        "evaluation": report,
        "seconds": time.monotonic() - started,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1, default=float))
    emit("done", policy=str(policy), result=str(out / "result.json"),
         agent_reward=report["agent"]["reward"]["mean"], greedy_reward=report["greedy"]["reward"]["mean"])
    return result


def read_forecast(data, path: Path):
    """A one-day forecast CSV (the profiles' format) for the grid of `data`."""
    from servers.optimizer.gridshift.data import read_profiles

    try:
        forecast = read_profiles(data.net, path, name="forecast")
    except GridDataError as exc:
        raise GridDataError("forecast", exc.message) from None
    if forecast.load_p.shape[0] != STEPS_PER_DAY:
        raise GridDataError("forecast", f"{forecast.load_p.shape[0]} rows; a forecast is one day of "
                                        f"{STEPS_PER_DAY} quarter hours")
    return forecast


def optimize(spec: JobSpec, policy_path: Path, day: int, forecast_path: Path | None = None) -> dict[str, Any]:
    """Plays one day with a stored policy (a day of the profiles, or a one-day forecast CSV): the
    plan of shifts, the shiftable loads' hourly energy before and after, SCR/SSR/reward before and
    after, and the whole day's power flow before and after; the greedy baseline's figures on the
    same day beside them. The shiftable loads are those the agent trained with (chosen on the
    profiles), whatever the forecast says."""
    data = open_grid(spec.grid, spec.profiles or None)
    options: dict[str, Any]
    if forecast_path is not None:
        options = {"profiles": read_forecast(data, forecast_path)}
    else:
        if not 0 <= day < data.days:
            raise GridDataError("day", f"day {day} is outside the profiles' {data.days} days (0..{data.days - 1})")
        options = {"day": day}
    model = _algorithm(spec.algorithm).load(policy_path, device="cpu")
    env = GridShiftEnv(data=data, days=[0], **spec.env_kwargs())
    obs, info = env.reset(options=options)
    before = {"scr": info["scr"], "ssr": info["ssr"], "reward": info["reward_raw"], "power_flow": env.check_day()}
    hourly_before = env.hourly()[:, list(env.shiftable)]
    done = False
    while not done:
        action, _state = model.predict(obs, deterministic=True)
        obs, _reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    after = {"scr": info["scr"], "ssr": info["ssr"], "reward": info["reward_raw"], "power_flow": env.check_day(),
             "per_bus": info["per_bus"]}
    hourly_after = env.hourly()[:, list(env.shiftable)]
    probe = GridShiftEnv(data=data, days=[0], **spec.env_kwargs())
    greedy = baselines.run_episode(probe, baselines.greedy, options=options)
    return {"day": info["day"], "plan": env.plan, "before": before, "after": after,
            "shiftable_loads": [data.load_index[i] for i in env.shiftable],
            "hourly_mwh_before": hourly_before.T.tolist(), "hourly_mwh_after": hourly_after.T.tolist(),
            "greedy": {k: greedy[k] for k in ("reward", "scr", "ssr", "violations")}}


def evaluate_stored(spec: JobSpec, policy_path: Path, days: tuple[int, int]) -> dict[str, Any]:
    """A stored policy beside the three baselines on `days` (EvaluateAgent)."""
    from dataclasses import replace

    data = open_grid(spec.grid, spec.profiles or None)
    if not 0 <= days[0] < days[1] <= data.days:
        raise GridDataError("days", f"[{days[0]}, {days[1]}) is not within the profiles' {data.days} days")
    model = _algorithm(spec.algorithm).load(policy_path, device="cpu")
    report = evaluate(model, replace(spec, eval_days=days), data)
    print_table(report)
    return report


def print_plan(out: dict[str, Any]) -> None:
    b, a = out["before"], out["after"]
    what = "forecast day" if out["day"] < 0 else f"day {out['day']}"
    print(f"{what}: {len(out['plan'])} shifts", flush=True)
    for s in out["plan"]:
        print(f"  load {s['load_index']:>3}  {s['from_hour']:02d}:00 -> {s['to_hour']:02d}:00  "
              f"{s['fraction']:.0%}  {s['energy_mwh'] * 1000:.3f} kWh", flush=True)
    print(f"SCR {b['scr']:.4f} -> {a['scr']:.4f}   SSR {b['ssr']:.4f} -> {a['ssr']:.4f}   "
          f"(SCR+SSR)/2 {b['reward']:.4f} -> {a['reward']:.4f}   greedy {out['greedy']['reward']:.4f}", flush=True)
    print(f"power flow, 96 quarter hours: before {b['power_flow']['status']} ({b['power_flow']['violations']} "
          f"violations), after {a['power_flow']['status']} ({a['power_flow']['violations']} violations)", flush=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from servers.optimizer.worker.spec import SpecError, parse

    parser = argparse.ArgumentParser(prog="python -m servers.optimizer.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and evaluate an agent from a job spec")
    t.add_argument("--spec", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    o = sub.add_parser("optimize", help="play one day with a trained policy and print the plan")
    o.add_argument("--spec", type=Path, required=True, help="the spec the policy was trained with")
    o.add_argument("--policy", type=Path, required=True)
    source = o.add_mutually_exclusive_group(required=True)
    source.add_argument("--day", type=int, help="a day of the profiles")
    source.add_argument("--forecast", type=Path, help="a one-day forecast CSV (the profiles' format)")
    o.add_argument("--out", type=Path, required=True, help="where to write the plan (JSON)")
    e = sub.add_parser("evaluate", help="evaluate a trained policy beside the baselines on held-out days")
    e.add_argument("--spec", type=Path, required=True, help="the spec the policy was trained with")
    e.add_argument("--policy", type=Path, required=True)
    e.add_argument("--days", type=int, nargs=2, required=True, metavar=("FIRST", "LAST"))
    e.add_argument("--out", type=Path, required=True, help="where to write the evaluation (JSON)")
    args = parser.parse_args(argv)
    try:
        spec = parse(json.loads(args.spec.read_text()))
        if args.command == "optimize":
            plan = optimize(spec, args.policy, args.day or 0, args.forecast)
            args.out.write_text(json.dumps(plan, indent=1, default=float))
            print_plan(plan)
            return 0
        if args.command == "evaluate":
            report = evaluate_stored(spec, args.policy, tuple(args.days))
            args.out.write_text(json.dumps(report, indent=1, default=float))
            return 0
        args.out.mkdir(parents=True, exist_ok=True)
        train(spec, args.out)
    except (SpecError, GridDataError) as exc:
        emit("error", field=getattr(exc, "field", ""), message=getattr(exc, "message", str(exc)))
        print(f"invalid job: {exc}", file=sys.stderr)
        return 2
    np.seterr(all="ignore")
    return 0
