"""Learning curves as a PNG (matplotlib, in `.venv-rl`): `make demo-optimizer` writes each agent's
training episodes (from WatchAgent) to a JSON file and runs

    .venv-rl/bin/python -m servers.optimizer.worker.plot --episodes curves.json --out curve.png

`curves.json`: {"<agent name>": [{"episode": 1, "timesteps": 24, "episode_return": ..., "scr": ...,
"ssr": ...}, ...], ...}. Two panels: each day's return with a moving average, and (SCR + SSR) / 2
at the end of each training day.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) == 0:
        return values
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot(curves: dict[str, list[dict]], out: Path, window: int = 20) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for name, episodes in curves.items():
        steps = np.array([e["timesteps"] for e in episodes], dtype=float)
        returns = np.array([e["episode_return"] for e in episodes], dtype=float)
        level = np.array([(e["scr"] + e["ssr"]) / 2 for e in episodes], dtype=float)
        (line,) = top.plot(steps, returns, alpha=0.25, linewidth=0.8)
        smooth = moving_average(returns, window)
        top.plot(steps[len(steps) - len(smooth):], smooth, color=line.get_color(), label=f"{name} ({window}-day mean)")
        bottom.plot(steps, level, alpha=0.25, color=line.get_color(), linewidth=0.8)
        smooth = moving_average(level, window)
        bottom.plot(steps[len(steps) - len(smooth):], smooth, color=line.get_color(), label=name)
    top.set_ylabel("training day's return")
    top.legend(loc="best")
    top.set_title("GridShift-v0: learning curves (training days)")
    bottom.set_ylabel("(SCR + SSR) / 2 at day's end")
    bottom.set_xlabel("environment steps")
    bottom.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servers.optimizer.worker.plot")
    parser.add_argument("--episodes", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--window", type=int, default=20)
    args = parser.parse_args(argv)
    plot(json.loads(args.episodes.read_text()), args.out, args.window)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
