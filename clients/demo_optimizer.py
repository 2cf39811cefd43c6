"""`make demo-optimizer`: the seed's RL demand shifting (section 2.2) through the front door.

1. two agents on the default SimBench grid (1-LV-rural1--0-sw): PPO and DQN (Stable-Baselines3),
   trained on days 0-239 of 2016 with the `gain` reward, evaluated on the held-out days 240-253;
2. their training days streamed over WatchAgent, the learning curves written as a PNG to the data
   dir (plotted in .venv-rl) and printed as a table;
3. the evaluation beside the three baselines (no shift, random, greedy);
4. one held-out day planned with the better agent: the plan, the shifted loads' hourly profiles
   before and after, SCR/SSR before and after, and the power-flow check of the 96 quarter hours.

Run with `make demo-optimizer` (starts the mesh first). MLMESH_DEMO_OPTIMIZER_STEPS sets the
training steps per agent (default 2400: 100 training days of 24 shifts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import mlmesh
from clients import session
from clients.settings import ClientSettings

REPO = Path(__file__).resolve().parents[1]
RL_PYTHON = REPO / ".venv-rl" / "bin" / "python"
TRAIN, EVAL, DAY = (0, 240), (240, 254), 246
AGENTS = {
    "PPO": {"algorithm": "ALGORITHM_PPO", "hyperparameters": {"n_steps": 240, "batch_size": 60}},
    "DQN": {"algorithm": "ALGORITHM_DQN",
            "hyperparameters": {"learning_starts": 300, "buffer_size": 20000, "exploration_fraction": 0.3}},
}


def _agent(name: str, steps: int) -> dict:
    return {"display_name": f"demo-{name.lower()}-{int(time.time())}", **AGENTS[name], "total_timesteps": steps,
            "seed": 1, "reward": "gain", "train_days": {"first": TRAIN[0], "last": TRAIN[1]},
            "eval_days": {"first": EVAL[0], "last": EVAL[1]}}


def _curve_table(curves: dict[str, list[dict]], buckets: int = 8) -> Table:
    table = Table(title="learning curve: mean return and (SCR+SSR)/2 of the training days, by stretch of training")
    table.add_column("training days")
    for name in curves:
        table.add_column(f"{name} return", justify="right")
        table.add_column(f"{name} (SCR+SSR)/2", justify="right")
    length = min(len(c) for c in curves.values())
    edges = sorted({round(i * length / buckets) for i in range(buckets + 1)})
    for start, end in zip(edges, edges[1:], strict=False):
        cells = [f"{start + 1}-{end}"]
        for episodes in curves.values():
            part = episodes[start:end]
            cells.append(f"{sum(e['episode_return'] for e in part) / len(part):+.4f}")
            cells.append(f"{sum((e['scr'] + e['ssr']) / 2 for e in part) / len(part):.4f}")
        table.add_row(*cells)
    return table


def _evaluation_table(agents: dict) -> Table:
    table = Table(title=f"held-out days {EVAL[0]}-{EVAL[1] - 1}: mean ± std over the days")
    for column in ("agent", "policy", "(SCR+SSR)/2", "SCR", "SSR", "violations"):
        table.add_column(column, justify="right" if column not in ("agent", "policy") else "left")
    for name, agent in agents.items():
        for p in agent.evaluation.policies:
            table.add_row(name, p.policy, f"{p.reward.mean:.4f} ± {p.reward.std:.4f}",
                          f"{p.scr.mean:.4f} ± {p.scr.std:.4f}", f"{p.ssr.mean:.4f} ± {p.ssr.std:.4f}",
                          f"{p.violations.mean:.2f}")
    return table


def run_demo_optimizer(settings: ClientSettings, console: Console, token: str) -> int:
    work = settings.data_dir.resolve() / "demo-optimizer"
    work.mkdir(parents=True, exist_ok=True)
    steps = int(os.environ.get("MLMESH_DEMO_OPTIMIZER_STEPS", "2400"))

    def say(text: str) -> None:
        console.rule(f"[bold]{text}")

    with mlmesh.Client(settings.front_door, token=token, organization_id=settings.org) as client:
        say(f"1. PPO and DQN on 1-LV-rural1--0-sw, {steps} steps each, training days {TRAIN[0]}-{TRAIN[1] - 1}")
        created = {name: client.optimizer.create(_agent(name, steps)) for name in AGENTS}
        for name, agent in created.items():
            console.print(f"{name}: agent {agent.agent_id} {mlmesh_state(agent)}")

        say("2. training, watched over WatchAgent (one line per 20 training days)")
        curves: dict[str, list[dict]] = {}
        done = {}
        for name, agent in created.items():
            started = time.monotonic()
            episodes: list[dict] = []
            for event in client.optimizer.watch(agent.agent_id, timeout=3600):
                if event.HasField("episode"):
                    e = event.episode
                    episodes.append({"episode": e.episode, "timesteps": e.timesteps,
                                     "episode_return": e.episode_return, "scr": e.scr, "ssr": e.ssr})
                    if e.episode % 20 == 0:
                        console.print(f"{name} day {e.episode:>4}  steps {e.timesteps:>6}  return "
                                      f"{e.episode_return:+.4f}  SCR {e.scr:.4f}  SSR {e.ssr:.4f}")
                else:
                    console.print(f"{name}: {mlmesh_state(event.agent)}")
            done[name] = client.optimizer.get(agent.agent_id)
            curves[name] = episodes
            console.print(f"{name}: {mlmesh_state(done[name])} after {time.monotonic() - started:.0f} s "
                          f"{done[name].failure_reason}")
        failed = [n for n, a in done.items() if mlmesh_state(a) != "SUCCEEDED"]
        if failed:
            console.print(f"[red]not trained: {', '.join(failed)}")
            return 1

        data = work / "learning-curves.json"
        data.write_text(json.dumps(curves))
        png = work / "learning-curve.png"
        subprocess.run([str(RL_PYTHON), "-m", "servers.optimizer.worker.plot", "--episodes", str(data), "--out",
                        str(png)], cwd=REPO, check=True, capture_output=True, timeout=300)
        console.print(_curve_table(curves))
        console.print(f"learning curve: {png}")

        say("3. evaluation on the held-out days beside the baselines")
        console.print(_evaluation_table(done))
        best = max(done, key=lambda n: done[n].evaluation.policies[0].reward.mean)

        say(f"4. day {DAY} (held out) planned by the {best} agent's stored policy")
        plan = client.optimizer.optimize(done[best].agent_id, DAY)
        console.print(f"policy: Registry model {plan.model_id} ({plan.source}); {len(plan.shifts)} shifts")
        for s in plan.shifts:
            console.print(f"  load {s.load_index:>3}  {s.from_hour:02d}:00 -> {s.to_hour:02d}:00  "
                          f"{s.fraction:.0%}  {s.energy_mwh * 1000:.3f} kWh")
        profiles = Table(title="shifted loads, hourly energy in kWh: before -> after (hours that changed)")
        profiles.add_column("load")
        profiles.add_column("hour -> before / after")
        for load in plan.loads:
            changed = [(h, b, a) for h, (b, a) in enumerate(zip(load.hourly_mwh_before, load.hourly_mwh_after,
                                                                 strict=True)) if abs(a - b) > 1e-12]
            if changed:
                profiles.add_row(str(load.load_index), "  ".join(f"{h:02d}h {b * 1000:.2f}/{a * 1000:.2f}"
                                                                 for h, b, a in changed))
        console.print(profiles)
        figures = Table(title=f"day {DAY}, grid level")
        for column in ("", "SCR", "SSR", "(SCR+SSR)/2", "power flow (96 quarter hours)", "violations"):
            figures.add_column(column)
        for label, f in (("before", plan.before), ("after", plan.after), ("greedy", plan.greedy)):
            figures.add_row(label, f"{f.scr:.4f}", f"{f.ssr:.4f}", f"{f.reward:.4f}", f.power_flow_status or "-",
                            str(f.violations))
        console.print(figures)
        ok = plan.after.power_flow_status == "converged" and plan.after.violations == 0
        console.print(f"power-flow check after the plan: {'passed' if ok else 'FAILED'}")
        return 0 if ok else 1


def mlmesh_state(agent) -> str:
    return type(agent).State.Name(agent.state).removeprefix("STATE_")


def main() -> int:
    settings = session.load_settings()
    return run_demo_optimizer(settings, Console(width=110), session.bearer_token(settings, settings.org))


if __name__ == "__main__":
    sys.exit(main())
