"""`mlmesh/GridShift-v0`: shift shiftable demand between adjacent hours of one day on a
pandapower grid so that more of the locally produced PV energy is used locally (seed 2.2).

One episode is one day: 96 quarter hours, acted on in 24 hourly slots. An action is the seed's
four choices: which shiftable load, which hour, how much (1 %, 5 % or 10 % of that load's
energy in that hour) and where (the previous or the next hour). The energy taken from the
source hour's four quarter hours (each scaled by 1 - fraction) arrives spread evenly over the
target hour's four quarter hours, so a load's daily energy is unchanged and only two adjacent
hourly slots change. A shift off the day's edge (hour 0 to the previous hour, hour 23 to the
next) changes nothing and is reported as not applied.

Reward after every action: (SCR + SSR) / 2 of the shifted day, with the standard definitions
(the seed's text gives two ratios that are reciprocals of each other):
    E_self = sum_t min(PV_t, Load_t) * dt     (grid level: all loads, all static generators)
    SCR = E_self / E_PV      SSR = E_self / E_load      (0 when the denominator is 0)
(`reward="level"`, the default), or with `reward="gain"` the change of (SCR + SSR) / 2 this action
made, in percentage points (an episode's return is then the day's total gain: the same best plan,
without the day-to-day spread of the level that swamps a single shift's effect); in both modes
minus `violation_penalty` per voltage-band or loading violation found by the step's power
flow, and minus `divergence_penalty` when that power flow does not converge (the step still
ends normally; `info["power_flow"]` says why).

The step's power flow runs at the quarter hour of the two changed hours with the largest net
load magnitude |Load_t - PV_t| (the most stressed moment the action touched);
`power_flow="changed"` runs all eight changed quarter hours, `"none"` none. `check_day()` runs
the whole day.

Observation (all in [0, 1], scaled by S = max(daily load energy, daily PV energy)): the shiftable
loads' hourly energy (n x 24), the other loads' hourly energy (24), the PV's hourly energy (24)
and the fraction of actions left (1).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from servers.optimizer.gridshift.data import DEFAULT_GRID, STEPS_PER_DAY, GridData, GridDataError, open_grid

HOURS = 24
QUARTERS = STEPS_PER_DAY // HOURS
DT_H = 0.25
FRACTIONS = (0.01, 0.05, 0.10)
DIRECTIONS = ("previous", "next")

log = logging.getLogger("mlmesh.gridshift")


@dataclass(frozen=True)
class Shift:
    load: int  # position among the shiftable loads
    hour: int
    fraction: float
    direction: str

    @property
    def to_hour(self) -> int:
        return self.hour - 1 if self.direction == "previous" else self.hour + 1


def self_consumption(load: np.ndarray, pv: np.ndarray) -> tuple[float, float, float]:
    """(SCR, SSR, E_self in MWh) of quarter-hourly load and PV power (MW)."""
    e_self = float(np.minimum(load, pv).sum() * DT_H)
    e_pv = float(pv.sum() * DT_H)
    e_load = float(load.sum() * DT_H)
    scr = e_self / e_pv if e_pv > 0 else 0.0
    ssr = e_self / e_load if e_load > 0 else 0.0
    return scr, ssr, e_self


class GridShiftEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, grid: str = DEFAULT_GRID, profiles: str | None = None, *, data: GridData | None = None,
                 days: list[int] | tuple[int, ...] | range | None = None, day_order: str = "random",
                 n_shiftable: int = 7, max_actions: int = 24, action_space: str = "discrete",
                 power_flow: str = "worst", violation_penalty: float = 0.1, divergence_penalty: float = 1.0,
                 reward: str = "level"):
        super().__init__()
        self.data = data if data is not None else open_grid(grid, profiles)
        n_days = self.data.days
        self.days = tuple(range(n_days)) if days is None else tuple(int(d) for d in days)
        if not self.days:
            raise GridDataError("days", "no days to play")
        bad = [d for d in self.days if not 0 <= d < n_days]
        if bad:
            raise GridDataError("days", f"day {bad[0]} is outside the profiles' {n_days} days (0..{n_days - 1})")
        if day_order not in ("random", "cycle"):
            raise GridDataError("day_order", "must be 'random' or 'cycle'")
        n_loads = self.data.load_p.shape[1]
        if not 1 <= n_shiftable <= n_loads:
            raise GridDataError("n_shiftable", f"must be between 1 and the grid's {n_loads} loads")
        if max_actions < 1:
            raise GridDataError("max_actions", "must be at least 1")
        if power_flow not in ("worst", "changed", "none"):
            raise GridDataError("power_flow", "must be 'worst', 'changed' or 'none'")
        if reward not in ("level", "gain"):
            raise GridDataError("reward", "must be 'level' or 'gain'")
        self.reward_mode = reward
        if action_space not in ("discrete", "multidiscrete"):
            raise GridDataError("action_space", "must be 'discrete' or 'multidiscrete'")
        self.day_order, self.max_actions, self.power_flow = day_order, max_actions, power_flow
        self.violation_penalty, self.divergence_penalty = violation_penalty, divergence_penalty
        # The seed acts on the loads with the largest share of demand.
        energy = self.data.load_p.sum(axis=0)
        self.shiftable = tuple(int(i) for i in np.argsort(-energy, kind="stable")[:n_shiftable])
        self._others = [i for i in range(n_loads) if i not in self.shiftable]
        self._dims = (n_shiftable, HOURS, len(FRACTIONS), len(DIRECTIONS))
        self.action_space = (spaces.Discrete(int(np.prod(self._dims))) if action_space == "discrete"
                             else spaces.MultiDiscrete(list(self._dims)))
        size = n_shiftable * HOURS + HOURS + HOURS + 1
        self.observation_space = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
        self.net = copy.deepcopy(self.data.net)
        self._bus_band = self._bus_limits()
        self._line_max = (self.net.line["max_loading_percent"].fillna(100.0).to_numpy(float)
                          if "max_loading_percent" in self.net.line else np.full(len(self.net.line), 100.0))
        self._pf_warm = False
        self._cycle = 0
        self.day = self.days[0]
        self._p = self._p0 = np.zeros((STEPS_PER_DAY, n_loads))

    # -- spaces ------------------------------------------------------------------------------
    def decode(self, action: Any) -> Shift:
        if isinstance(self.action_space, spaces.Discrete):
            load, hour, size, direction = np.unravel_index(int(action), self._dims)
        else:
            load, hour, size, direction = (int(a) for a in np.asarray(action).reshape(-1))
        return Shift(int(load), int(hour), FRACTIONS[int(size)], DIRECTIONS[int(direction)])

    def encode(self, shift: Shift) -> Any:
        parts = (shift.load, shift.hour, FRACTIONS.index(shift.fraction), DIRECTIONS.index(shift.direction))
        if isinstance(self.action_space, spaces.Discrete):
            return int(np.ravel_multi_index(parts, self._dims))
        return np.array(parts, dtype=np.int64)

    # -- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if options.get("profiles") is not None:
            day = -1  # a forecast: no day of the data
        elif "day" in options:
            day = int(options["day"])
            if day not in range(self.data.days):
                raise GridDataError("day", f"day {day} is outside the profiles' {self.data.days} days")
        elif self.day_order == "cycle":
            day = self.days[self._cycle % len(self.days)]
            self._cycle += 1
        else:
            day = self.days[int(self.np_random.integers(len(self.days)))]
        self.day = day
        rows = slice(day * STEPS_PER_DAY, (day + 1) * STEPS_PER_DAY)
        day_data = options.get("profiles")  # a forecast of one day instead of a day of the data
        source = self.data if day_data is None else day_data
        if day_data is not None:
            rows = slice(0, STEPS_PER_DAY)
            if (day_data.load_p.shape != (STEPS_PER_DAY, self.data.load_p.shape[1])
                    or day_data.sgen_p.shape != (STEPS_PER_DAY, self.data.sgen_p.shape[1])):
                raise GridDataError("profiles", f"a day to play is {STEPS_PER_DAY} quarter hours of every load and "
                                                "static generator of the grid")
        self._p0 = source.load_p[rows].copy()
        self._q0 = source.load_q[rows].copy()
        self._pv = source.sgen_p[rows].sum(axis=1)
        self._sgen = source.sgen_p[rows]
        self._p = self._p0.copy()
        # Reactive power follows active power at the load's daily power factor.
        p_sum, q_sum = self._p0.sum(axis=0), self._q0.sum(axis=0)
        self._tan_phi = np.divide(q_sum, p_sum, out=np.zeros_like(p_sum), where=p_sum > 0)
        self._scale = max(float(self._p0.sum()), float(self._pv.sum()), 1e-12) * DT_H  # MWh
        self._left = self.max_actions
        self._plan: list[dict] = []
        scr, ssr, _ = self.ratios()
        self._initial = (scr, ssr)
        self._last_raw = (scr + ssr) / 2
        return self._obs(), {"day": day, "scr": scr, "ssr": ssr, "reward_raw": (scr + ssr) / 2}

    def step(self, action):
        if self._left <= 0:
            raise RuntimeError("the episode is over: call reset()")
        shift = self.decode(action)
        before = self._last_raw
        applied, moved = self._apply(shift)
        self._left -= 1
        scr, ssr, e_self = self.ratios()
        raw = (scr + ssr) / 2
        info: dict[str, Any] = {"day": self.day, "scr": scr, "ssr": ssr, "reward_raw": raw, "e_self_mwh": e_self,
                                "shift": {"load": shift.load, "load_index": self.data.load_index[
                                    self.shiftable[shift.load]], "from_hour": shift.hour, "to_hour": shift.to_hour,
                                    "fraction": shift.fraction, "energy_mwh": moved, "applied": applied}}
        penalty = 0.0
        quarters = self._pf_quarters(shift) if applied else []
        check = self.power_flow_at(quarters)
        info["power_flow"] = check["status"]
        info["violations"] = check["violations"]
        penalty += self.violation_penalty * check["violations"]
        if check["status"].startswith("not converged"):
            penalty += self.divergence_penalty
        if applied:
            self._plan.append(info["shift"])
        info["penalty"] = penalty
        terminated = self._left == 0
        self._last_raw = raw
        if terminated:
            info["per_bus"] = self.per_bus()
        value = raw if self.reward_mode == "level" else 100.0 * (raw - before)
        return self._obs(), float(value - penalty), terminated, False, info

    # -- the state ---------------------------------------------------------------------------------
    def _apply(self, shift: Shift) -> tuple[bool, float]:
        to = shift.to_hour
        if not 0 <= to < HOURS or not 0 <= shift.load < len(self.shiftable):
            return False, 0.0
        col = self.shiftable[shift.load]
        src = slice(shift.hour * QUARTERS, (shift.hour + 1) * QUARTERS)
        dst = slice(to * QUARTERS, (to + 1) * QUARTERS)
        taken = self._p[src, col] * shift.fraction
        moved = float(taken.sum())
        if moved <= 0:
            return False, 0.0
        self._p[src, col] -= taken
        self._p[dst, col] += moved / QUARTERS
        return True, moved * DT_H

    def load_total(self) -> np.ndarray:
        return self._p.sum(axis=1)

    def ratios(self) -> tuple[float, float, float]:
        return self_consumption(self.load_total(), self._pv)

    def per_bus(self) -> list[dict]:
        """SCR and SSR per bus where PV is connected (loads and generators at that bus only)."""
        net, out = self.net, []
        load_bus = net.load.bus.to_numpy()
        sgen_bus = net.sgen.bus.to_numpy()
        for bus in sorted(set(int(b) for b in sgen_bus)):
            pv = self._sgen[:, sgen_bus == bus].sum(axis=1)
            load = self._p[:, load_bus == bus].sum(axis=1)
            scr, ssr, _ = self_consumption(load, pv)
            out.append({"bus": bus, "scr": scr, "ssr": ssr})
        return out

    def hourly(self, p: np.ndarray | None = None) -> np.ndarray:
        p = self._p if p is None else p
        return p.reshape(HOURS, QUARTERS, -1).sum(axis=1) * DT_H

    def _obs(self) -> np.ndarray:
        hourly = self.hourly()
        shiftable = hourly[:, list(self.shiftable)].T.reshape(-1)
        others = hourly[:, self._others].sum(axis=1) if self._others else np.zeros(HOURS)
        pv = self._pv.reshape(HOURS, QUARTERS).sum(axis=1) * DT_H
        obs = np.concatenate([shiftable, others, pv]) / self._scale
        obs = np.clip(np.concatenate([obs, [self._left / self.max_actions]]), 0.0, 1.0)
        return obs.astype(np.float32)

    @property
    def profiles(self) -> np.ndarray:
        """The day's load profiles (96 x loads, MW) as shifted so far."""
        return self._p.copy()

    @property
    def original_profiles(self) -> np.ndarray:
        return self._p0.copy()

    @property
    def pv(self) -> np.ndarray:
        return self._pv.copy()

    @property
    def plan(self) -> list[dict]:
        return list(self._plan)

    @property
    def actions_left(self) -> int:
        return self._left

    # -- the power flow ------------------------------------------------------------------------------
    def _bus_limits(self) -> tuple[np.ndarray, np.ndarray]:
        bus = self.net.bus
        low = bus["min_vm_pu"].fillna(0.9).to_numpy(float) if "min_vm_pu" in bus else np.full(len(bus), 0.9)
        high = bus["max_vm_pu"].fillna(1.1).to_numpy(float) if "max_vm_pu" in bus else np.full(len(bus), 1.1)
        return low, high

    def _pf_quarters(self, shift: Shift) -> list[int]:
        lo = min(shift.hour, shift.to_hour) * QUARTERS
        window = np.arange(lo, lo + 2 * QUARTERS)
        if self.power_flow == "none":
            return []
        if self.power_flow == "changed":
            return [int(t) for t in window]
        net_load = np.abs(self.load_total()[window] - self._pv[window])
        return [int(window[int(np.argmax(net_load))])]

    def power_flow_at(self, quarters: list[int]) -> dict:
        """Runs the power flow at each quarter hour; counts buses outside their voltage band and
        lines and transformers above their loading limit."""
        import pandapower as pp

        if not quarters:
            return {"status": "skipped", "violations": 0, "voltage": 0, "loading": 0, "quarters": []}
        voltage = loading = 0
        failed: list[str] = []
        low, high = self._bus_band
        for t in quarters:
            p = self._p[t]
            q = self._q0[t] + (p - self._p0[t]) * self._tan_phi
            self.net.load["p_mw"] = p
            self.net.load["q_mvar"] = q
            if len(self.net.sgen):
                self.net.sgen["p_mw"] = self._sgen[t]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if self._pf_warm:
                        pp.runpp(self.net, init="results", recycle=dict(trafo=False, gen=False, bus_pq=True))
                    else:
                        pp.runpp(self.net)
                self._pf_warm = True
            except Exception as exc:  # LoadflowNotConverged and numerical failures alike
                self._pf_warm = False
                failed.append(f"quarter hour {t}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            vm = self.net.res_bus.vm_pu.to_numpy(float)
            voltage += int(np.sum((vm < low) | (vm > high)))
            if len(self.net.line):
                loading += int(np.sum(self.net.res_line.loading_percent.to_numpy(float) > self._line_max))
            if len(self.net.trafo):
                loading += int(np.sum(self.net.res_trafo.loading_percent.to_numpy(float) > 100.0))
        status = "converged" if not failed else "not converged: " + "; ".join(failed[:3])
        return {"status": status, "violations": voltage + loading, "voltage": voltage, "loading": loading,
                "quarters": quarters}

    def check_day(self) -> dict:
        """The power flow at all 96 quarter hours of the day as shifted so far."""
        return self.power_flow_at(list(range(STEPS_PER_DAY)))
