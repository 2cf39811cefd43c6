"""Grids and their profiles: a SimBench benchmark grid (shipped inside the `simbench` package,
nothing downloaded) or a user's pandapower JSON with a CSV of 15-minute profiles.

A profile CSV has one row per quarter hour (a multiple of 96 rows: whole days) and one column
per element and quantity, named `load_p_mw:<index>`, `load_q_mvar:<index>` and `sgen_p_mw:<index>`
with the element's index in the pandapower tables. Other columns (a `time` column, for instance)
are ignored. Every load and every static generator of the grid needs its `p` column; a missing
`load_q_mvar` column keeps the load's reactive power at the grid file's value scaled with p.
"""

from __future__ import annotations

import copy
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

STEPS_PER_DAY = 96
DEFAULT_GRID = "1-LV-rural1--0-sw"


class GridDataError(ValueError):
    """The grid or its profiles cannot be used; `field` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class GridData:
    net: object  # pandapower.pandapowerNet, never modified: environments work on a copy
    load_p: np.ndarray  # (quarter hours, loads) MW
    load_q: np.ndarray  # (quarter hours, loads) Mvar
    sgen_p: np.ndarray  # (quarter hours, static generators) MW
    load_index: tuple[int, ...]  # pandapower indexes of the columns above
    sgen_index: tuple[int, ...]
    name: str

    @property
    def days(self) -> int:
        return self.load_p.shape[0] // STEPS_PER_DAY


def _check(data: GridData) -> GridData:
    rows = data.load_p.shape[0]
    if rows == 0 or rows % STEPS_PER_DAY:
        raise GridDataError("profiles", f"{rows} rows is not a whole number of days of {STEPS_PER_DAY} quarter hours")
    for what, arr in (("load_p_mw", data.load_p), ("load_q_mvar", data.load_q), ("sgen_p_mw", data.sgen_p)):
        if not np.all(np.isfinite(arr)):
            raise GridDataError("profiles", f"{what} has values that are not finite numbers")
    if np.any(data.load_p < 0):
        raise GridDataError("profiles", "load_p_mw has negative values (generation belongs in sgen_p_mw)")
    if np.any(data.sgen_p < 0):
        raise GridDataError("profiles", "sgen_p_mw has negative values")
    if not data.load_index:
        raise GridDataError("grid", "the grid has no loads")
    return data


def cache_dir() -> Path:
    """Where converted SimBench grids are kept (reading SimBench's CSVs takes 5-15 s, the cache
    well under one): MLMESH_GRIDSHIFT_CACHE, else ~/.cache/mlmesh-gridshift."""
    return Path(os.environ.get("MLMESH_GRIDSHIFT_CACHE") or Path.home() / ".cache" / "mlmesh-gridshift")


def _from_cache(base: Path, code: str) -> GridData | None:
    import pandapower as pp

    try:
        arrays = np.load(base.with_suffix(".npz"))
        net = pp.from_json_string(base.with_suffix(".json").read_text())
        return GridData(net=net, load_p=arrays["load_p"], load_q=arrays["load_q"], sgen_p=arrays["sgen_p"],
                        load_index=tuple(int(i) for i in arrays["load_index"]),
                        sgen_index=tuple(int(i) for i in arrays["sgen_index"]), name=f"simbench:{code}")
    except Exception:  # absent, partial or from another version: read SimBench again
        return None


def _to_cache(base: Path, data: GridData) -> None:
    import pandapower as pp

    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        tmp = base.parent / f".{base.name}.{os.getpid()}"
        np.savez(tmp.with_suffix(".npz"), load_p=data.load_p, load_q=data.load_q, sgen_p=data.sgen_p,
                 load_index=np.array(data.load_index), sgen_index=np.array(data.sgen_index))
        tmp.with_suffix(".json").write_text(pp.to_json(data.net))
        # the arrays last: a reader finding them finds the grid too
        os.replace(tmp.with_suffix(".json"), base.with_suffix(".json"))
        os.replace(tmp.with_suffix(".npz"), base.with_suffix(".npz"))
    except OSError:
        pass  # a read-only home: no cache, the next process reads SimBench again


@functools.lru_cache(maxsize=4)
def _simbench(code: str) -> GridData:
    import simbench

    base = cache_dir() / f"{code}-simbench-{simbench.__version__}"
    cached = _from_cache(base, code)
    if cached is not None:
        return _check(cached)
    try:
        net = simbench.get_simbench_net(code)
    except Exception as exc:  # simbench raises plain errors for unknown codes
        raise GridDataError("grid", f"{code!r} is not a SimBench grid code ({exc})") from None
    prof = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    load_p = prof[("load", "p_mw")]
    load_q = prof[("load", "q_mvar")]
    sgen_p = prof[("sgen", "p_mw")]
    net.profiles = {}  # the year of profiles lives in the arrays, not in every copy of the net
    data = _check(GridData(
        net=net, load_p=load_p[list(net.load.index)].to_numpy(float),
        load_q=load_q[list(net.load.index)].to_numpy(float),
        sgen_p=sgen_p[list(net.sgen.index)].to_numpy(float) if len(net.sgen) else np.zeros((len(load_p), 0)),
        load_index=tuple(int(i) for i in net.load.index), sgen_index=tuple(int(i) for i in net.sgen.index),
        name=f"simbench:{code}"))
    _to_cache(base, data)
    return data


def simbench_grid(code: str = DEFAULT_GRID) -> GridData:
    return _simbench(code)


def read_grid_json(text: str | bytes):
    import pandapower as pp

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise GridDataError("grid", "the grid file is not UTF-8 JSON") from None
    try:
        net = pp.from_json_string(text)
    except Exception as exc:  # pandapower raises many kinds for a bad file
        raise GridDataError("grid", f"not a pandapower JSON grid ({type(exc).__name__})") from None
    if not hasattr(net, "load") or not hasattr(net, "bus") or len(net.bus) == 0:
        raise GridDataError("grid", "not a pandapower JSON grid (no buses)")
    return net


def read_profiles(net, csv: str | bytes | Path, name: str = "user grid") -> GridData:
    """The profiles of `net` from a CSV in the format of this module's docstring."""
    source = io.BytesIO(csv) if isinstance(csv, bytes) else (io.StringIO(csv) if isinstance(csv, str) else csv)
    try:
        frame = pd.read_csv(source)
    except Exception as exc:
        raise GridDataError("profiles", f"not a readable CSV ({type(exc).__name__})") from None
    columns = {}
    for kind, table in (("load_p_mw", net.load), ("sgen_p_mw", net.sgen)):
        for idx in table.index:
            col = f"{kind}:{idx}"
            if col not in frame.columns:
                raise GridDataError("profiles", f"column {col!r} is missing (one per element of the grid)")
            columns[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
    load_p = np.column_stack([columns[f"load_p_mw:{i}"] for i in net.load.index]) if len(net.load) else None
    if load_p is None:
        raise GridDataError("grid", "the grid has no loads")
    q_cols = []
    for pos, idx in enumerate(net.load.index):
        col = f"load_q_mvar:{idx}"
        if col in frame.columns:
            q_cols.append(pd.to_numeric(frame[col], errors="coerce").to_numpy(float))
        else:
            p0, q0 = float(net.load.at[idx, "p_mw"]), float(net.load.at[idx, "q_mvar"])
            q_cols.append(load_p[:, pos] * (q0 / p0 if p0 else 0.0))
    sgen_p = (np.column_stack([columns[f"sgen_p_mw:{i}"] for i in net.sgen.index]) if len(net.sgen)
              else np.zeros((len(frame), 0)))
    return _check(GridData(net=net, load_p=load_p, load_q=np.column_stack(q_cols), sgen_p=sgen_p,
                           load_index=tuple(int(i) for i in net.load.index),
                           sgen_index=tuple(int(i) for i in net.sgen.index), name=name))


def load_files(grid_json: Path, profiles_csv: Path) -> GridData:
    net = read_grid_json(Path(grid_json).read_bytes())
    return read_profiles(net, Path(profiles_csv), name=Path(grid_json).name)


def write_files(data: GridData, grid_json: Path, profiles_csv: Path) -> None:
    """Writes `data` as a pandapower JSON and a profile CSV that `load_files` reads back."""
    import pandapower as pp

    net = copy.deepcopy(data.net)
    net.profiles = {}
    Path(grid_json).write_text(pp.to_json(net))
    cols = {}
    for pos, idx in enumerate(data.load_index):
        cols[f"load_p_mw:{idx}"] = data.load_p[:, pos]
        cols[f"load_q_mvar:{idx}"] = data.load_q[:, pos]
    for pos, idx in enumerate(data.sgen_index):
        cols[f"sgen_p_mw:{idx}"] = data.sgen_p[:, pos]
    pd.DataFrame(cols).to_csv(profiles_csv, index=False, float_format="%.9g")


def open_grid(grid: str = DEFAULT_GRID, profiles: str | Path | None = None) -> GridData:
    """`grid` is a SimBench code (profiles from SimBench) or a pandapower JSON path (then
    `profiles` is the CSV path)."""
    if profiles is None:
        return simbench_grid(grid.removeprefix("simbench:"))
    return load_files(Path(grid), Path(profiles))
