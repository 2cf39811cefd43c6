"""Policies every evaluation reports beside the agent, and the evaluation loop they share.

- `noop`: the day as it is (every action is a shift off the day's edge, which changes nothing);
- `random`: uniformly random actions from the environment's action space;
- `greedy`: repeatedly moves the largest shiftable demand in an hour without surplus PV one hour
  toward the nearest hour with unused PV (the one with the most unused PV on ties), 10 % at a
  time, within the same constraints as the agent. With no unused PV left it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from servers.optimizer.gridshift.env import FRACTIONS, HOURS, GridShiftEnv, Shift

Policy = Callable[[GridShiftEnv, np.ndarray], Any]


def noop(env: GridShiftEnv, _obs: np.ndarray) -> Any:
    return env.encode(Shift(load=0, hour=0, fraction=FRACTIONS[0], direction="previous"))


def make_random(seed: int) -> Policy:
    rng = np.random.default_rng(seed)

    def random_policy(env: GridShiftEnv, _obs: np.ndarray) -> Any:
        space = env.action_space
        if hasattr(space, "n"):
            return int(rng.integers(space.n))
        return np.array([rng.integers(n) for n in space.nvec], dtype=np.int64)

    return random_policy


def greedy(env: GridShiftEnv, _obs: np.ndarray) -> Any:
    hourly = env.hourly()  # MWh per hour and load
    load = hourly.sum(axis=1)
    pv = env.pv.reshape(HOURS, -1).sum(axis=1) * 0.25
    surplus = pv - load
    sunny = np.flatnonzero(surplus > 1e-12)
    if len(sunny) == 0:
        return noop(env, _obs)
    best: tuple[float, Shift] | None = None
    for hour in range(HOURS):
        if surplus[hour] > 1e-12:
            continue  # this hour's demand is already covered
        distance = np.abs(sunny - hour)
        nearest = sunny[distance == distance.min()]
        target = int(nearest[np.argmax(surplus[nearest])])
        direction = "next" if target > hour else "previous"
        for pos, col in enumerate(env.shiftable):
            demand = hourly[hour, col]
            if demand > 0 and (best is None or demand > best[0]):
                best = (demand, Shift(load=pos, hour=hour, fraction=FRACTIONS[-1], direction=direction))
    if best is None:
        return noop(env, _obs)
    return env.encode(best[1])


def run_episode(env: GridShiftEnv, policy: Policy, *, day: int = 0, seed: int | None = None,
                options: dict | None = None) -> dict:
    """Plays one day with `policy` (`day`, or the reset `options` given, such as a forecast's
    profiles); the episode's return, SCR/SSR before and after, violations."""
    obs, info = env.reset(seed=seed, options=options if options is not None else {"day": day})
    day = info["day"]
    before = (info["scr"], info["ssr"])
    total, violations, diverged, done = 0.0, 0, 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(env, obs))
        total += reward
        violations += info["violations"]
        diverged += int(info["power_flow"].startswith("not converged"))
        done = terminated or truncated
    return {"day": day, "return": total, "reward": (info["scr"] + info["ssr"]) / 2, "scr": info["scr"],
            "ssr": info["ssr"], "scr_before": before[0], "ssr_before": before[1], "violations": violations,
            "diverged": diverged, "plan": env.plan, "per_bus": info.get("per_bus", [])}


def summarize(episodes: list[dict]) -> dict:
    out: dict[str, Any] = {"episodes": len(episodes)}
    for key in ("return", "reward", "scr", "ssr", "violations"):
        values = np.array([e[key] for e in episodes], dtype=float)
        out[key] = {"mean": float(values.mean()), "std": float(values.std())}
    buses: dict[int, list[dict]] = {}
    for e in episodes:
        for b in e.get("per_bus", []):
            buses.setdefault(b["bus"], []).append(b)
    out["per_bus"] = [{"bus": bus, "scr": float(np.mean([b["scr"] for b in rows])),
                       "ssr": float(np.mean([b["ssr"] for b in rows]))} for bus, rows in sorted(buses.items())]
    return out
