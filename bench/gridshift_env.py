"""The Optimizer's environment speed (runs in .venv-rl): `mlmesh/GridShift-v0` steps per second
with the step's power flow on the default SimBench grid, against a bare `pandapower.runpp` loop
(warm start, the same recycle options) over the same grid and the same quarter hours, measured in
this run. The issue's target: >= 100 steps/s and >= 0.8x the bare loop.

    .venv-rl/bin/python -m bench.gridshift_env [--seconds 5]
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np

from servers.optimizer.gridshift.data import STEPS_PER_DAY, simbench_grid
from servers.optimizer.gridshift.env import GridShiftEnv

DAYS = range(150, 200)


def env_steps(seconds: float, power_flow: str) -> float:
    env = GridShiftEnv(data=simbench_grid(), days=DAYS, max_actions=24, power_flow=power_flow)
    env.reset(seed=0)
    env.action_space.seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _obs, _r, terminated, _t, _info = env.step(env.action_space.sample())
        steps += 1
        if terminated:
            env.reset()
    return steps / (time.perf_counter() - start)


def bare_runpp(seconds: float) -> float:
    import pandapower as pp

    data = simbench_grid()
    net = copy.deepcopy(data.net)
    rng = np.random.default_rng(0)
    pp.runpp(net)
    runs, start = 0, time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while time.perf_counter() - start < seconds:
            t = int(rng.integers(DAYS.start, DAYS.stop)) * STEPS_PER_DAY + int(rng.integers(STEPS_PER_DAY))
            net.load["p_mw"] = data.load_p[t]
            net.load["q_mvar"] = data.load_q[t]
            net.sgen["p_mw"] = data.sgen_p[t]
            pp.runpp(net, init="results", recycle=dict(trafo=False, gen=False, bus_pq=True))
            runs += 1
    return runs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    simbench_grid()  # load once, outside the timings
    bare = bare_runpp(args.seconds)
    with_pf = env_steps(args.seconds, "worst")
    without = env_steps(args.seconds, "none")
    print(f"bare pandapower.runpp loop (baseline): {bare:8.1f} power flows/s")
    print(f"env steps, one power flow each:        {with_pf:8.1f} steps/s  = {with_pf / bare:.2f}x the bare loop "
          f"(target >= 100 steps/s and >= 0.8x)")
    print(f"env steps, power flow off:             {without:8.1f} steps/s  = {without / bare:.1f}x")


if __name__ == "__main__":
    main()
