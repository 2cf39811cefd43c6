"""The ``power-forecast`` transformer (seed 2.1.3.1, UC9/UC10, Table 2): one window of recent power
readings per sensor (meter) predicts the value a horizon ahead, min-max scaled."""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.base import REGRESSION, Obs, Output, PredictContext, Transformer
from servers.learner.ml.transformers._common import (
    check_keys,
    check_task,
    checked_row,
    checked_target,
    finite_recent,
    float_param,
    int_param,
    names_param,
    numeric_columns,
    read_csv,
)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class PowerForecastTransformer(Transformer):
    """The UC9/UC10 forecasters' pre- and post-processing (seed 2.1.3.1): the previous `window` power
    samples of a meter predict its value `horizon` samples (of `interval_seconds`) later.

    Params: ``window`` (36), ``horizon`` (96), ``interval_seconds`` (900), ``scale_min``, ``scale_max``
    (required: model scale = (kW - scale_min) / (scale_max - scale_min)), ``sensors`` (optional: the
    meters/topics accepted, e.g. Table 2's "BBB60XX", "W4", "W6"; default any).

    Learning takes readings (one buffer per sensor: a training pair forms when the reading `horizon`
    steps after a full window arrives) or rows (a window in kW, the target in kW). A reading older
    than or as old as the sensor's previous one is refused; one more than 1.5 intervals after it
    starts the sensor's buffer afresh (counted in `gaps`). A reading's time without a time zone is
    taken as UTC. Features are lag_36 .. lag_1 (lag_1 the most recent, the last column).
    The reference CSV is the format of examples/make_power_csv.py (``timestamp,power_kw``): cut into
    every window of consecutive readings (windows do not span a gap in the timestamps); a CSV with the
    lag columns themselves is taken as is.
    """

    name = "power-forecast"

    def __init__(self, task: str, params: dict[str, Any]):
        super().__init__(task, params)
        check_task(self.name, task, (REGRESSION,))
        check_keys(self.name, params, ("window", "horizon", "interval_seconds", "scale_min", "scale_max",
                                        "sensors"))
        self.window = int_param(params, "window", 36, 1, 10_000)
        self.horizon = int_param(params, "horizon", 96, 1, 100_000)
        interval = params.get("interval_seconds", 900)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < math.inf:
            raise InvalidArgument(f"transformer_params.interval_seconds must be a positive number, got {interval!r}")
        self.interval = float(interval)
        self.scale_min = float_param(params, "scale_min")
        self.scale_max = float_param(params, "scale_max")
        if self.scale_max <= self.scale_min:
            raise InvalidArgument(f"transformer_params.scale_max ({self.scale_max}) must be greater than "
                                  f"scale_min ({self.scale_min})")
        sensors = names_param(params, "sensors", 1)
        self.sensors = set(sensors) if sensors is not None else None
        self._sensor_list = sensors or []
        self._span = self.scale_max - self.scale_min
        self._names = [f"lag_{k}" for k in range(self.window, 0, -1)]
        self._keep = self.window + self.horizon
        # per sensor: the latest readings (time, kW), oldest first, at most window + horizon
        self._buffers: dict[str, deque[tuple[datetime, float]]] = {}
        self.gaps = 0  # buffers restarted because readings were missing

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.window,)

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    def _scale(self, kw: np.ndarray) -> np.ndarray:
        return (np.asarray(kw, dtype=np.float64) - self.scale_min) / self._span

    def to_units(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self._span + self.scale_min

    def monitor_rows(self, X: np.ndarray) -> np.ndarray:
        return self.to_units(np.asarray(X).reshape(len(X), -1))

    def _check_sensor(self, sensor_id: str, what: str) -> None:
        if not isinstance(sensor_id, str) or not sensor_id:
            raise InvalidArgument(f"{what}: sensor_id is empty; name the meter the reading comes from")
        if self.sensors is not None and sensor_id not in self.sensors:
            raise InvalidArgument(f"{what}: sensor {sensor_id!r} is not one of this learner's sensors "
                                  f"({', '.join(self._sensor_list)})")

    def learn_pairs(self, observations: list[Obs]) -> tuple[np.ndarray, np.ndarray]:
        # work on copies of the touched buffers: a bad observation leaves every buffer as it was
        touched: dict[str, deque[tuple[datetime, float]]] = {}
        gaps = 0
        xs: list[np.ndarray] = []
        ys: list[float] = []
        for i, obs in enumerate(observations):
            if obs.reading is None:
                row = checked_row(obs, i, self._names, "sensor readings or rows of a window in kW")
                target = checked_target(obs, i, REGRESSION, None)
                xs.append(self._scale(row))
                ys.append(float(self._scale(target)))
                continue
            r = obs.reading
            self._check_sensor(r.sensor_id, f"observation {i}")
            if obs.target is not None:
                raise InvalidArgument(f"observation {i}: a sensor reading carries no target (its target is the "
                                      f"reading {self.horizon} steps later); leave target unset")
            value = r.value
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value):
                raise InvalidArgument(f"observation {i}: sensor {r.sensor_id!r} value is {value!r}, expected a "
                                      "finite number of kW")
            if not isinstance(r.time, datetime):
                raise InvalidArgument(f"observation {i}: the reading's time is missing")
            t = _utc(r.time)
            buf = touched.get(r.sensor_id)
            if buf is None:
                buf = touched[r.sensor_id] = deque(self._buffers.get(r.sensor_id, ()), maxlen=self._keep)
            if buf:
                last = buf[-1][0]
                if t <= last:
                    raise InvalidArgument(f"observation {i}: sensor {r.sensor_id!r} reading at {t.isoformat()} "
                                          f"is not after its previous one at {last.isoformat()}; send readings "
                                          "in time order")
                if (t - last).total_seconds() > 1.5 * self.interval:
                    buf.clear()
                    gaps += 1
            buf.append((t, float(value)))
            if len(buf) == self._keep:
                values = np.fromiter((v for _, v in buf), dtype=np.float64, count=self._keep)
                xs.append(self._scale(values[: self.window]))
                ys.append(float(self._scale(values[-1])))
        self._buffers.update(touched)
        self.gaps += gaps
        if not xs:
            return np.empty((0, self.window), dtype=np.float32), np.empty(0, dtype=np.float32)
        return np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.float32)

    def model_inputs(self, inputs: list[Obs], sensor_id: str = "") -> tuple[np.ndarray, PredictContext]:
        if sensor_id:
            if inputs:
                raise InvalidArgument("send either inputs or sensor_id, not both")
            self._check_sensor(sensor_id, "sensor_id")
            buf = self._buffers.get(sensor_id, ())
            if len(buf) < self.window:
                since = f" since {buf[0][0].isoformat()}" if buf else ""
                raise FailedPrecondition(f"sensor {sensor_id!r} has {len(buf)} consecutive readings buffered"
                                         f"{since}; a forecast needs {self.window}: send more readings first")
            values = np.fromiter((v for _, v in buf), dtype=np.float64, count=len(buf))[-self.window:]
            target_time = buf[-1][0] + timedelta(seconds=self.horizon * self.interval)
            return (self._scale(values)[None].astype(np.float32),
                    PredictContext(n=1, extra={"target_times": [target_time]}))
        if not inputs:
            raise InvalidArgument("inputs is empty; send windows of power (kW) as rows, or a sensor_id")
        X = np.stack([self._scale(checked_row(obs, i, self._names, f"rows of {self.window} readings in kW "
                                       "(or a sensor_id)"))
                      for i, obs in enumerate(inputs)])
        return X.astype(np.float32), PredictContext(n=len(inputs))

    def outputs(self, predictions: np.ndarray, ctx: PredictContext) -> list[Output]:
        kw = self.to_units(np.asarray(predictions).reshape(-1))
        times = ctx.extra.get("target_times") or [None] * len(kw)
        return [Output(values=[float(v)], target_time=t) for v, t in zip(kw, times, strict=True)]

    def reference_rows(self, csv_path: Path, max_rows: int) -> np.ndarray:
        import pandas as pd

        df = read_csv(csv_path)
        header = list(df.columns)
        if all(n in header for n in self._names):
            return finite_recent(numeric_columns(df, self._names), max_rows)
        if "power_kw" not in header:
            raise FailedPrecondition(f"the reference dataset has no column 'power_kw' (nor the lag columns "
                                     f"{self._names[0]} .. {self._names[-1]}); it has {', '.join(header)}")
        values = numeric_columns(df, ["power_kw"])[:, 0]
        # segments of consecutive readings: split where a value is missing or the timestamps jump
        breaks = ~np.isfinite(values)
        if "timestamp" in header:
            times = pd.to_datetime(df["timestamp"], errors="coerce", utc=True, format="ISO8601")
            seconds = ((times - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype=np.float64)
            step = np.diff(seconds, prepend=np.nan)
            jump = ~((step > 0) & (step <= 1.5 * self.interval))  # NaN (a bad timestamp) is a jump too
            jump[0] = False
            breaks[~np.isfinite(seconds)] = True
            breaks |= jump
        windows = []
        start = 0
        for end in [*np.flatnonzero(breaks), len(values)]:
            segment = values[start:end]
            if len(segment) >= self.window:
                windows.append(np.lib.stride_tricks.sliding_window_view(segment, self.window))
            start = end + (1 if end < len(values) and not np.isfinite(values[end]) else 0)
        if not windows:
            return np.empty((0, self.window))
        return finite_recent(np.concatenate(windows), max_rows)

    def pending(self) -> int:
        # windows already complete whose target (horizon readings later) has not arrived
        total = 0
        for buf in self._buffers.values():
            n = len(buf)
            total += max(0, n - max(self.window - 1, n - self.horizon))
        return total

    def state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "gaps": self.gaps,
            "sensors": {sid: {"times": [t.isoformat() for t, _ in buf], "values": [v for _, v in buf]}
                        for sid, buf in self._buffers.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        try:
            buffers = {}
            for sid, b in state["sensors"].items():
                pairs = [(_utc(datetime.fromisoformat(t)), float(v)) for t, v in zip(b["times"], b["values"],
                                                                                     strict=True)]
                buffers[sid] = deque(pairs[-self._keep:], maxlen=self._keep)
            gaps = int(state.get("gaps", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise FailedPrecondition(f"the saved power-forecast state is not readable ({e!r})") from None
        self._buffers = buffers
        self.gaps = gaps
