"""The Learner's use-case transformers (seed 2.1: "each OL service will encompass a different
Transformer"): observations in, training pairs and model inputs out; model outputs in, answers out.

* ``tabular``: rows of features as given.
* ``power-forecast`` (seed 2.1.3.1, UC9/UC10, Table 2): one window of recent power readings per sensor
  (meter) predicts the value a horizon ahead, min-max scaled.
* ``image`` (seed 2.1.3.2, smart agriculture): a PNG/JPEG in, class probabilities and the image with
  the prediction drawn onto it out.

`make_transformer(name, task, params)` builds one; params are checked here (unknown keys fail).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml import images
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, TASKS, Obs, Output, PredictContext, Transformer

# ---------------------------------------------------------------- parameter checks


def _check_keys(name: str, params: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidArgument(f"transformer_params: unknown key(s) {', '.join(unknown)} for the {name!r} "
                              f"transformer; it takes {', '.join(known)}")


def _int_param(params: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    value = params.get(key, default)
    if value is None:
        raise InvalidArgument(f"transformer_params.{key} is required (an integer in {low}..{high})")
    # JSON (google.protobuf.Struct) numbers arrive as floats: 36.0 is 36
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise InvalidArgument(f"transformer_params.{key} must be an integer in {low}..{high}, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise InvalidArgument(f"transformer_params.{key} must be an integer in {low}..{high}, got {value}")
    return value


def _float_param(params: dict[str, Any], key: str) -> float:
    value = params.get(key)
    if value is None:
        raise InvalidArgument(f"transformer_params.{key} is required (a number)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"transformer_params.{key} must be a finite number, got {value!r}")
    return float(value)


def _names_param(params: dict[str, Any], key: str, minimum: int) -> list[str] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidArgument(f"transformer_params.{key} must be a list of non-empty strings, got {value!r}")
    if len(value) < minimum:
        raise InvalidArgument(f"transformer_params.{key} needs at least {minimum} names, got {len(value)}")
    duplicates = sorted({v for v in value if list(value).count(v) > 1})
    if duplicates:
        raise InvalidArgument(f"transformer_params.{key} names must be unique; repeated: {', '.join(duplicates)}")
    return list(value)


def _check_task(name: str, task: str, allowed: tuple[str, ...] = TASKS) -> None:
    if task not in allowed:
        raise InvalidArgument(f"task must be {' or '.join(allowed)} for the {name!r} transformer, got {task!r}")


def _target(obs: Obs, index: int, task: str, n_classes: int | None) -> float:
    """The observation's target, checked: a finite number, a class index in range for classification."""
    t = obs.target
    if t is None:
        raise InvalidArgument(f"observation {index}: the target is missing; learning needs one")
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not math.isfinite(t):
        raise InvalidArgument(f"observation {index}: the target must be a finite number, got {t!r}")
    if task == CLASSIFICATION and (not float(t).is_integer() or not 0 <= t < n_classes):
        raise InvalidArgument(f"observation {index}: the target must be a class index in 0..{n_classes - 1}, "
                              f"got {t!r}")
    return float(t)


def _row(obs: Obs, index: int, names: list[str], kind: str) -> np.ndarray:
    """The observation's row, checked: length and finite values."""
    if obs.row is None:
        got = "a sensor reading" if obs.reading is not None else "an image" if obs.image is not None else "nothing"
        raise InvalidArgument(f"observation {index}: this learner takes {kind}, got {got}")
    row = np.asarray(obs.row, dtype=np.float64).reshape(-1)
    if len(row) != len(names):
        raise InvalidArgument(f"observation {index}: the row has {len(row)} values, expected {len(names)} "
                              f"({names[0]} .. {names[-1]})")
    bad = np.flatnonzero(~np.isfinite(row))
    if len(bad):
        raise InvalidArgument(f"observation {index}: feature {names[bad[0]]!r} is {row[bad[0]]}, "
                              "expected a finite number")
    return row


def _no_sensor(name: str, sensor_id: str) -> None:
    if sensor_id:
        raise InvalidArgument(f"sensor_id applies to power-forecast learners only; this one is {name!r}: "
                              "send inputs instead")


def _classification_outputs(predictions: np.ndarray, labels: list[str]) -> list[Output]:
    out = []
    for probs in np.asarray(predictions, dtype=np.float64).reshape(len(predictions), -1):
        k = int(np.argmax(probs))
        out.append(Output(values=[float(p) for p in probs], class_index=k, label=labels[k] if labels else ""))
    return out


def _read_csv(csv_path: Path):
    """The reference dataset as a pandas DataFrame of strings (header names stripped)."""
    import pandas as pd

    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise FailedPrecondition("the reference dataset is empty; it needs a header row and data rows") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise FailedPrecondition(f"the reference dataset cannot be read as CSV: {e}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _numeric_columns(df, columns: list[str]) -> np.ndarray:
    """The named columns as float64 (n, len(columns)); cells that are not numbers become NaN."""
    import pandas as pd

    if not columns:
        return np.empty((len(df), 0))
    return np.stack([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64) for c in columns], axis=1)


def _finite_recent(rows: np.ndarray, max_rows: int) -> np.ndarray:
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    return rows[-max_rows:] if max_rows > 0 else rows[:0]


# ---------------------------------------------------------------- tabular


class TabularTransformer(Transformer):
    """Rows of features as given. Params: ``feature_count`` (required), ``feature_names`` (default
    x0, x1, ...), ``classes`` (classification: the labels, index = class) or ``n_classes``
    (classification without labels). The reference CSV has a column per feature name; without
    `feature_names`, its first `feature_count` numeric columns are used."""

    name = "tabular"

    def __init__(self, task: str, params: dict[str, Any]):
        super().__init__(task, params)
        _check_task(self.name, task)
        _check_keys(self.name, params, ("feature_count", "feature_names", "classes", "n_classes"))
        self._count = _int_param(params, "feature_count", None, 1, 100_000)
        names = _names_param(params, "feature_names", 1)
        if names is not None and len(names) != self._count:
            raise InvalidArgument(f"transformer_params.feature_names has {len(names)} names but feature_count "
                                  f"is {self._count}")
        self._named = names is not None
        self._names = names or [f"x{i}" for i in range(self._count)]
        self._labels: list[str] = []
        self._n_classes: int | None = None
        if task == CLASSIFICATION:
            labels = _names_param(params, "classes", 2)
            if labels is not None:
                self._labels = labels
                self._n_classes = len(labels)
                if "n_classes" in params and _int_param(params, "n_classes", None, 2, 100_000) != len(labels):
                    raise InvalidArgument(f"transformer_params.n_classes disagrees with the {len(labels)} classes")
            elif "n_classes" in params:
                self._n_classes = _int_param(params, "n_classes", None, 2, 100_000)
            else:
                raise InvalidArgument("transformer_params.classes (the class labels) or n_classes is required "
                                      "for classification")
        elif "classes" in params or "n_classes" in params:
            raise InvalidArgument("transformer_params.classes / n_classes apply to classification only")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self._count,)

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    @property
    def n_classes(self) -> int | None:
        return self._n_classes

    @property
    def class_labels(self) -> list[str]:
        return list(self._labels)

    def learn_pairs(self, observations: list[Obs]) -> tuple[np.ndarray, np.ndarray]:
        X = np.empty((len(observations), self._count), dtype=np.float32)
        y = np.empty(len(observations), dtype=np.float32)
        for i, obs in enumerate(observations):
            X[i] = _row(obs, i, self._names, "rows of features")
            y[i] = _target(obs, i, self.task, self._n_classes)
        return X, y

    def model_inputs(self, inputs: list[Obs], sensor_id: str = "") -> tuple[np.ndarray, PredictContext]:
        _no_sensor(self.name, sensor_id)
        if not inputs:
            raise InvalidArgument("inputs is empty; send at least one row")
        X = np.stack([_row(obs, i, self._names, "rows of features") for i, obs in enumerate(inputs)])
        return X.astype(np.float32), PredictContext(n=len(inputs))

    def outputs(self, predictions: np.ndarray, ctx: PredictContext) -> list[Output]:
        if self.task == CLASSIFICATION:
            return _classification_outputs(predictions, self._labels)
        return [Output(values=[float(v)]) for v in np.asarray(predictions, dtype=np.float64).reshape(-1)]

    def reference_rows(self, csv_path: Path, max_rows: int) -> np.ndarray:
        df = _read_csv(csv_path)
        header = list(df.columns)
        if self._named:
            missing = [n for n in self._names if n not in header]
            if missing:
                raise FailedPrecondition(f"the reference dataset has no column {missing[0]!r} (feature_names "
                                         f"needs {', '.join(self._names)}; it has {', '.join(header)})")
            columns = self._names
        else:  # the first feature_count columns whose cells are (mostly) numbers
            numeric = [c for c in header if len(df) and np.isfinite(_numeric_columns(df, [c])).mean() >= 0.5]
            if len(numeric) < self._count:
                raise FailedPrecondition(f"the reference dataset has {len(numeric)} numeric columns "
                                         f"({', '.join(numeric) or 'none'}); feature_count is {self._count}")
            columns = numeric[: self._count]
        return _finite_recent(_numeric_columns(df, columns), max_rows)


# ---------------------------------------------------------------- power forecast


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
        _check_task(self.name, task, (REGRESSION,))
        _check_keys(self.name, params, ("window", "horizon", "interval_seconds", "scale_min", "scale_max",
                                        "sensors"))
        self.window = _int_param(params, "window", 36, 1, 10_000)
        self.horizon = _int_param(params, "horizon", 96, 1, 100_000)
        interval = params.get("interval_seconds", 900)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < math.inf:
            raise InvalidArgument(f"transformer_params.interval_seconds must be a positive number, got {interval!r}")
        self.interval = float(interval)
        self.scale_min = _float_param(params, "scale_min")
        self.scale_max = _float_param(params, "scale_max")
        if self.scale_max <= self.scale_min:
            raise InvalidArgument(f"transformer_params.scale_max ({self.scale_max}) must be greater than "
                                  f"scale_min ({self.scale_min})")
        sensors = _names_param(params, "sensors", 1)
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
                row = _row(obs, i, self._names, "sensor readings or rows of a window in kW")
                target = _target(obs, i, REGRESSION, None)
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
        X = np.stack([self._scale(_row(obs, i, self._names, f"rows of {self.window} readings in kW "
                                       "(or a sensor_id)"))
                      for i, obs in enumerate(inputs)])
        return X.astype(np.float32), PredictContext(n=len(inputs))

    def outputs(self, predictions: np.ndarray, ctx: PredictContext) -> list[Output]:
        kw = self.to_units(np.asarray(predictions).reshape(-1))
        times = ctx.extra.get("target_times") or [None] * len(kw)
        return [Output(values=[float(v)], target_time=t) for v, t in zip(kw, times, strict=True)]

    def reference_rows(self, csv_path: Path, max_rows: int) -> np.ndarray:
        import pandas as pd

        df = _read_csv(csv_path)
        header = list(df.columns)
        if all(n in header for n in self._names):
            return _finite_recent(_numeric_columns(df, self._names), max_rows)
        if "power_kw" not in header:
            raise FailedPrecondition(f"the reference dataset has no column 'power_kw' (nor the lag columns "
                                     f"{self._names[0]} .. {self._names[-1]}); it has {', '.join(header)}")
        values = _numeric_columns(df, ["power_kw"])[:, 0]
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
        return _finite_recent(np.concatenate(windows), max_rows)

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


# ---------------------------------------------------------------- image


class ImageTransformer(Transformer):
    """Smart agriculture (seed 2.1.3.2): an encoded PNG/JPEG image in, resized to `size` x `size` RGB
    (model input (3, size, size), float 0..1); out: the class probabilities and the original image with
    a frame in the class colour and "label probability" drawn on it (PNG).

    Params: ``size`` (16), ``classes`` (required for classification, e.g. ["healthy", "diseased"]).
    Regression (e.g. a severity score) works too: the drawn text is the value. The monitor compares
    image statistics, not pixels: `images.STAT_COLUMNS` (mean_red, mean_green, mean_blue, contrast,
    excess_green); the reference dataset is a CSV with those columns (`images.write_reference_csv`).
    """

    name = "image"

    def __init__(self, task: str, params: dict[str, Any]):
        super().__init__(task, params)
        _check_task(self.name, task)
        _check_keys(self.name, params, ("size", "classes"))
        self.size = _int_param(params, "size", 16, 4, 256)
        self._labels: list[str] = []
        if task == CLASSIFICATION:
            labels = _names_param(params, "classes", 2)
            if labels is None:
                raise InvalidArgument("transformer_params.classes (the class labels, e.g. [\"healthy\", "
                                      "\"diseased\"]) is required for classification")
            self._labels = labels
        elif "classes" in params:
            raise InvalidArgument("transformer_params.classes applies to classification only")
        s = self.size
        self._names = [f"pixel_{y}_{x}_{c}" for c in "rgb" for y in range(s) for x in range(s)]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (3, self.size, self.size)

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    @property
    def n_classes(self) -> int | None:
        return len(self._labels) if self.task == CLASSIFICATION else None

    @property
    def class_labels(self) -> list[str]:
        return list(self._labels)

    def _decode(self, obs: Obs, index: int):
        if obs.image is None:
            got = "a row" if obs.row is not None else "a sensor reading" if obs.reading is not None else "nothing"
            raise InvalidArgument(f"observation {index}: this learner takes images (PNG or JPEG), got {got}")
        return images.decode(obs.image, f"observation {index}")

    def learn_pairs(self, observations: list[Obs]) -> tuple[np.ndarray, np.ndarray]:
        X = np.empty((len(observations), *self.input_shape), dtype=np.float32)
        y = np.empty(len(observations), dtype=np.float32)
        for i, obs in enumerate(observations):
            y[i] = _target(obs, i, self.task, self.n_classes)
            X[i] = images.to_array(self._decode(obs, i), self.size)
        return X, y

    def model_inputs(self, inputs: list[Obs], sensor_id: str = "") -> tuple[np.ndarray, PredictContext]:
        _no_sensor(self.name, sensor_id)
        if not inputs:
            raise InvalidArgument("inputs is empty; send at least one image")
        originals = [self._decode(obs, i) for i, obs in enumerate(inputs)]
        X = np.stack([images.to_array(img, self.size) for img in originals])
        return X, PredictContext(n=len(inputs), extra={"images": originals})

    def outputs(self, predictions: np.ndarray, ctx: PredictContext) -> list[Output]:
        if self.task == CLASSIFICATION:
            answers = _classification_outputs(predictions, self._labels)
            for out, img in zip(answers, ctx.extra["images"], strict=True):
                text = f"{out.label} {out.values[out.class_index]:.0%}"
                out.annotated_image = images.annotate(img, text, images.PALETTE[out.class_index % len(images.PALETTE)])
            return answers
        answers = []
        for v, img in zip(np.asarray(predictions, dtype=np.float64).reshape(-1), ctx.extra["images"], strict=True):
            answers.append(Output(values=[float(v)], annotated_image=images.annotate(img, f"{v:.3g}",
                                                                                     images.PALETTE[2])))
        return answers

    @property
    def monitor_columns(self) -> list[str]:
        return list(images.STAT_COLUMNS)

    def monitor_rows(self, X: np.ndarray) -> np.ndarray:
        return images.image_stats(np.asarray(X).reshape(len(X), *self.input_shape))

    def reference_rows(self, csv_path: Path, max_rows: int) -> np.ndarray:
        df = _read_csv(csv_path)
        missing = [c for c in images.STAT_COLUMNS if c not in df.columns]
        if missing:
            raise FailedPrecondition(f"the reference dataset has no column {missing[0]!r}; an image learner's "
                                     f"reference is a CSV of image statistics with columns "
                                     f"{', '.join(images.STAT_COLUMNS)} (see servers/learner/ml/images.py)")
        return _finite_recent(_numeric_columns(df, images.STAT_COLUMNS), max_rows)


# ---------------------------------------------------------------- registry

TRANSFORMERS: dict[str, type[Transformer]] = {
    TabularTransformer.name: TabularTransformer,
    PowerForecastTransformer.name: PowerForecastTransformer,
    ImageTransformer.name: ImageTransformer,
}


def make_transformer(name: str, task: str, params: dict[str, Any] | None) -> Transformer:
    """The named use-case transformer. Raises InvalidArgument for an unknown name, a task it does not
    serve, or bad params (naming the key)."""
    cls = TRANSFORMERS.get(name)
    if cls is None:
        raise InvalidArgument(f"transformer must be one of {', '.join(TRANSFORMERS)}, got {name!r}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidArgument(f"transformer_params must be an object, got {type(params).__name__}")
    return cls(task, dict(params))
