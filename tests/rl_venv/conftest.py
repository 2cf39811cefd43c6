"""Runs inside .venv-rl (pandapower, simbench, gymnasium, Stable-Baselines3):
`.venv-rl/bin/python -m pytest --confcutdir=tests/rl_venv tests/rl_venv` (part of `make test`)."""

import pytest

import servers.optimizer.gridshift  # noqa: F401  (registers mlmesh/GridShift-v0)
from servers.optimizer.gridshift.data import simbench_grid
from servers.optimizer.gridshift.env import GridShiftEnv

SUMMER_DAY = 172  # 2016-06-21: grid-level SCR 0.44, SSR 0.52


@pytest.fixture(scope="session")
def grid():
    return simbench_grid()


@pytest.fixture
def env(grid):
    return GridShiftEnv(data=grid, days=[SUMMER_DAY], max_actions=12)
