"""Each of the Optimizer's six algorithms against the greedy baseline on held-out days (runs in
.venv-rl): trained by the worker exactly as the server runs it (servers/optimizer/worker), then
evaluated on days it never saw beside no-shift, random and greedy, measured in this run.

    .venv-rl/bin/python -m bench.optimizer_agents [--steps 10000] [--reward gain] [--train-power-flow none]

Defaults: 1-LV-rural1--0-sw, training days 0-239 of 2016, held-out days 240-253 (chosen before any
run, never tuned), seed 1, 24 shifts a day, the `gain` reward, training without the per-step power
flow (`--train-power-flow none`: about 200x faster steps; no violation ever occurs on this grid, see
docs/optimizer.md) while the evaluation runs it on every step. Prints, per algorithm, the held-out
(SCR + SSR) / 2 beside no shift and greedy, and the agent's gain over no shift as a fraction of
greedy's (1.0 = as good as greedy; above 1 beats it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

from servers.optimizer.worker.spec import ALGORITHMS, parse

HYPERPARAMETERS = {
    "DQN": {"learning_starts": 1000, "buffer_size": 50000, "exploration_fraction": 0.3},
    "DOUBLE_DQN": {"learning_starts": 1000, "buffer_size": 50000, "exploration_fraction": 0.3},
    "DUELING_DQN": {"learning_starts": 1000, "buffer_size": 50000, "exploration_fraction": 0.3},
    "PPO": {"n_steps": 240, "batch_size": 60},
    "A2C": {"n_steps": 24},
    "REINFORCE": {"episodes_per_batch": 4},
}


def run(algorithm: str, steps: int, reward: str, train_power_flow: str, days: tuple[int, int],
        eval_days: tuple[int, int], seed: int = 1) -> dict:
    import torchrl  # noqa: F401  (its logger binds stdout at import: before the redirect below)

    from servers.optimizer.worker.train import train

    spec = parse({"algorithm": algorithm, "total_timesteps": steps, "seed": seed, "train_days": list(days),
                  "eval_days": list(eval_days), "reward": reward, "train_power_flow": train_power_flow,
                  "hyperparameters": HYPERPARAMETERS[algorithm]})
    with tempfile.TemporaryDirectory() as out, open(Path(out) / "log", "w") as log:
        started = time.perf_counter()
        with contextlib.redirect_stdout(log):  # the worker's one JSON line per training day
            result = train(spec, Path(out))
        result["wall_seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--reward", default="gain", choices=("level", "gain"))
    parser.add_argument("--train-power-flow", default="none", choices=("worst", "changed", "none"))
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--eval-days", type=int, nargs=2, default=(240, 254))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = {}
    for algorithm in args.algorithms.split(","):
        result = run(algorithm, args.steps, args.reward, args.train_power_flow, (0, 240), tuple(args.eval_days),
                     args.seed)
        ev = result["evaluation"]
        print(f"{algorithm}: trained and evaluated in {result['wall_seconds']:.0f} s", flush=True)
        rows[algorithm] = {name: ev[name]["reward"] for name in ("agent", "no_shift", "random", "greedy")}
        rows[algorithm]["seconds"] = result["wall_seconds"]
        rows[algorithm]["violations"] = ev["agent"]["violations"]["mean"]
    print(f"\nheld-out days {args.eval_days[0]}-{args.eval_days[1] - 1}, seed {args.seed}, {args.steps} training "
          f"steps per agent, "
          f"reward {args.reward!r}, training power flow {args.train_power_flow!r}; (SCR+SSR)/2 mean ± std over days")
    print(f"{'algorithm':<12} {'agent':>16} {'no shift':>8} {'random':>8} {'greedy':>8} "
          f"{'gain/greedy gain':>17} {'violations':>10} {'seconds':>8}")
    for algorithm, r in rows.items():
        base = r["no_shift"]["mean"]
        greedy_gain = r["greedy"]["mean"] - base
        ratio = (r["agent"]["mean"] - base) / greedy_gain if greedy_gain > 0 else float("nan")
        print(f"{algorithm:<12} {r['agent']['mean']:.4f} ±{r['agent']['std']:.4f} {base:8.4f} "
              f"{r['random']['mean']:8.4f} {r['greedy']['mean']:8.4f} {ratio:17.2f} {r['violations']:10.2f} "
              f"{r['seconds']:8.0f}")
    best = max(rows, key=lambda a: rows[a]["agent"]["mean"])
    beats = rows[best]["agent"]["mean"] > rows[best]["greedy"]["mean"]
    print(f"best agent: {best} ({rows[best]['agent']['mean']:.4f}); greedy {rows[best]['greedy']['mean']:.4f}: "
          f"{'the best agent beats greedy' if beats else 'no agent beats greedy'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
