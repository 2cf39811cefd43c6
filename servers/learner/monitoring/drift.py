"""The Learner's monitoring (seed 2.1.2, Figures 6-7): data drift of recent inputs against a
reference dataset (Evidently) and prediction errors of recent predictions, over a sliding window,
handed to a `MonitorSink` (the Prometheus series in `metrics.py`, for the Grafana dashboard in
`k8s/monitoring/`).

Pure Python and numpy/pandas/Evidently, no Prometheus: the gRPC layer converts the dataclasses
here to the `mlmesh.learner.v1` messages of the same names.

Use, per learner::

    monitor = Monitor(learner_id, transformer.monitor_columns, reference_rows, policy, sink=metrics.SINK)
    if monitor.observe_inputs(transformer.monitor_rows(X)):    # cheap; True when a drift run is due
        result = await asyncio.to_thread(monitor.evaluate)     # CPU-heavy: a worker thread
        if result.transition == "detected": ...                # emit KIND_DRIFT_DETECTED
    monitor.observe_errors(predictions, targets)               # user units, regression
    monitor.report()                                           # GetMonitoring
    metrics.forget(learner_id)                                 # DeleteLearner: drop its series

Drift is Evidently's per-column two-sample Kolmogorov-Smirnov test ("K-S p_value"): the policy's
`stattest_threshold` is a significance, so every column gets the same p-value test whatever the
reference size (Evidently's automatic choice would switch to a Wasserstein distance above 1000
reference rows, where 0.05 would mean something else). It runs through Evidently's DataDriftTable
(`evidently.legacy`, shipped in 0.7.23) rather than the `DataDriftPreset` of the new API: the
preset always renders plotly widgets, about 80 ms per column, 3 s for 36 columns x 500 rows,
where the table computes the same p-values in 0.2 s (tests/ml_venv/test_monitoring.py checks the
two agree). See docs/monitoring.md.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from servers.common.errors import FailedPrecondition, InvalidArgument

STATTEST = "ks"  # Evidently's id of the two-sample Kolmogorov-Smirnov test
MIN_REFERENCE_ROWS = 30
MIN_WINDOW_ROWS = 50  # fewer current rows than this and no drift is computed
HISTORY_POINTS = 288  # one day at one computation every 5 minutes

Transition = Literal["detected", "cleared"]


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature between the reference dataset and the current window."""

    name: str
    method: str  # Evidently's display name of the test, e.g. "K-S p_value"
    score: float  # the test's score: a p-value for "K-S p_value"
    threshold: float  # the score is compared with this
    drifted: bool


@dataclass(frozen=True)
class DataDrift:
    """Data drift of the current window."""

    dataset_drift: bool  # drift_share >= the policy's drift_share
    drift_share: float  # drifted_features / feature_count
    drifted_features: int
    feature_count: int
    features: tuple[FeatureDrift, ...]  # empty in history points
    compute_time: datetime  # tz-aware UTC
    window_size: int  # inputs in the window it was computed on

    def summary(self) -> DataDrift:
        """The same figures without the per-feature detail (history points)."""
        return replace(self, features=())


@dataclass(frozen=True)
class ErrorMetrics:
    """Prediction errors over the window; error = prediction - target, in user units."""

    count: int  # pairs in the window; every figure below is 0.0 when it is 0
    me: float  # mean error; positive = over-estimation on average
    mae: float
    mape: float  # percent, over targets != 0 only (0.0 when every target is 0)
    over_estimation_share: float  # share of predictions above their target
    under_estimation_share: float  # share of predictions below their target
    compute_time: datetime  # tz-aware UTC


@dataclass(frozen=True)
class MonitoringReport:
    """Monitoring figures of one learner."""

    learner_id: str
    reference_size: int
    drift: DataDrift | None  # None before the first drift computation
    errors: ErrorMetrics  # of the current window, computed when the report is made
    error_history: tuple[ErrorMetrics, ...]  # one per computation, oldest first, latest last
    drift_history: tuple[DataDrift, ...]  # one per drift computation (summaries), oldest first


@dataclass(frozen=True)
class Computation:
    """What one `Monitor.evaluate()` produced."""

    drift: DataDrift | None  # None when the window held too few inputs
    errors: ErrorMetrics
    transition: Transition | None  # the dataset-drift state flipped on this computation


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class MonitoringPolicy:
    """Sliding-window settings (proto MonitoringPolicy). Invalid values raise InvalidArgument."""

    window: int = 500
    every: int = 100
    drift_share: float = 0.5
    stattest_threshold: float = 0.05

    def __post_init__(self) -> None:
        for name in ("window", "every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InvalidArgument(f"monitoring.{name} must be an integer, got {value!r}")
        if not 50 <= self.window <= 100_000:
            raise InvalidArgument(f"monitoring.window must be between 50 and 100000 inputs, got {self.window}")
        if not 1 <= self.every <= self.window:
            raise InvalidArgument(
                f"monitoring.every must be between 1 and monitoring.window ({self.window}), got {self.every}"
            )
        if not (isinstance(self.drift_share, int | float) and 0.0 < self.drift_share <= 1.0):
            raise InvalidArgument(
                f"monitoring.drift_share must be in (0, 1], e.g. 0.5 for half the features, "
                f"got {self.drift_share!r}"
            )
        if not (isinstance(self.stattest_threshold, int | float) and 0.0 < self.stattest_threshold < 1.0):
            raise InvalidArgument(
                f"monitoring.stattest_threshold must be a significance in (0, 1), e.g. 0.05, "
                f"got {self.stattest_threshold!r}"
            )

    @classmethod
    def from_fields(
        cls, window: int = 0, every: int = 0, drift_share: float = 0.0, stattest_threshold: float = 0.0
    ) -> MonitoringPolicy:
        """From proto fields, where 0 means unset. An unset `every` is min(100, window)."""
        window = int(window) or cls.window
        return cls(
            window=window,
            every=int(every) or min(cls.every, window),
            drift_share=float(drift_share) or cls.drift_share,
            stattest_threshold=float(stattest_threshold) or cls.stattest_threshold,
        )


# --------------------------------------------------------------------------- where figures go


class MonitorSink(Protocol):
    """Receives a monitor's figures as they are computed (`metrics.SINK` exports them to Prometheus)."""

    def started(self, learner_id: str) -> None:
        """A monitor for `learner_id` exists (its series may be created at zero)."""

    def drift_computed(self, learner_id: str, drift: DataDrift, seconds: float) -> None: ...

    def errors_computed(self, learner_id: str, errors: ErrorMetrics) -> None: ...


# --------------------------------------------------------------------------- computations


def error_metrics(predictions: np.ndarray, targets: np.ndarray, when: datetime | None = None) -> ErrorMetrics:
    """ME, MAE, MAPE (%, targets != 0) and over/under-estimation shares of prediction - target."""
    when = when or datetime.now(UTC)
    pred = np.asarray(predictions, dtype=np.float64).ravel()
    true = np.asarray(targets, dtype=np.float64).ravel()
    n = int(pred.size)
    if n == 0:
        return ErrorMetrics(0, 0.0, 0.0, 0.0, 0.0, 0.0, when)
    err = pred - true
    nonzero = true != 0.0
    mape = float(np.mean(np.abs(err[nonzero] / true[nonzero])) * 100.0) if nonzero.any() else 0.0
    return ErrorMetrics(
        count=n,
        me=float(np.mean(err)),
        mae=float(np.mean(np.abs(err))),
        mape=mape,
        over_estimation_share=float(np.count_nonzero(err > 0)) / n,
        under_estimation_share=float(np.count_nonzero(err < 0)) / n,
        compute_time=when,
    )


def preload() -> float:
    """Import Evidently now (several seconds, once per process) rather than in the first
    computation; returns the seconds it took. The Learner server may call it in a thread at start."""
    started = time.perf_counter()
    import evidently.legacy.metrics  # noqa: F401
    import evidently.legacy.report  # noqa: F401

    return time.perf_counter() - started


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    names: Sequence[str],
    threshold: float,
    drift_share: float,
    when: datetime | None = None,
) -> DataDrift:
    """Evidently's per-column K-S test of `current` against `reference` (same columns, in the
    order of `names`, which are the features' display names)."""
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    keys = list(current.columns)
    table = DataDriftTable(columns=keys, stattest=STATTEST, stattest_threshold=threshold)
    mapping = ColumnMapping(
        target=None, prediction=None, datetime=None, id=None, numerical_features=keys, categorical_features=[]
    )
    Report(metrics=[table]).run(reference_data=reference, current_data=current, column_mapping=mapping)
    result = table.get_result()
    features = []
    for key, name in zip(keys, names, strict=True):
        column = result.drift_by_columns[key]
        features.append(
            FeatureDrift(
                name=name,
                method=column.stattest_name,
                score=float(column.drift_score),
                threshold=float(column.stattest_threshold),
                drifted=bool(column.drift_detected),
            )
        )
    drifted = sum(f.drifted for f in features)
    share = drifted / len(features)
    return DataDrift(
        dataset_drift=share >= drift_share,  # Evidently's rule (get_dataset_drift)
        drift_share=share,
        drifted_features=drifted,
        feature_count=len(features),
        features=tuple(features),
        compute_time=when or datetime.now(UTC),
        window_size=len(current),
    )


class _Ring:
    """A bounded window of float64 rows, oldest overwritten first."""

    def __init__(self, capacity: int, width: int):
        self._buf = np.empty((capacity, width), dtype=np.float64)
        self._pos = 0
        self.size = 0

    def extend(self, rows: np.ndarray) -> None:
        capacity = len(self._buf)
        rows = rows[-capacity:]
        n, pos = len(rows), self._pos
        if pos + n <= capacity:  # the common case (a prediction's few rows): one slice, no index array
            self._buf[pos:pos + n] = rows
        else:
            first = capacity - pos
            self._buf[pos:] = rows[:first]
            self._buf[:n - first] = rows[first:]
        self._pos = (pos + n) % capacity
        self.size = min(self.size + n, capacity)

    def snapshot(self) -> np.ndarray:
        """A copy, oldest row first."""
        if self.size < len(self._buf):
            return self._buf[: self.size].copy()
        return np.concatenate((self._buf[self._pos:], self._buf[: self._pos]))


def _rows(value: np.ndarray, width: int, what: str) -> np.ndarray:
    rows = np.asarray(value, dtype=np.float64)
    if rows.ndim == 1 and rows.size == width:
        rows = rows.reshape(1, width)
    if rows.ndim != 2 or rows.shape[1] != width:
        raise InvalidArgument(f"{what} must have shape (n, {width}), got {rows.shape}")
    if not np.isfinite(rows).all():
        raise InvalidArgument(f"{what} must be finite numbers; got NaN or infinity")
    return rows


class Monitor:
    """Sliding windows of one learner's inputs and prediction errors, drift against a reference.

    observe_* are cheap and thread-safe; `evaluate`/`compute` are CPU-heavy (run them in a worker
    thread) and serialised among themselves: they copy the windows under the lock and compute
    outside it, so observing goes on meanwhile.
    """

    def __init__(
        self,
        learner_id: str,
        columns: Sequence[str],
        reference: np.ndarray,
        policy: MonitoringPolicy | None = None,
        *,
        history: int = HISTORY_POINTS,
        sink: MonitorSink | None = None,
        compute_drift: Callable[..., DataDrift] | None = None,
    ):
        self.learner_id = learner_id
        # `data_drift` here, or the same function elsewhere (offload.DriftProcess: a child process).
        self._compute_drift = compute_drift or data_drift
        self.columns = [str(c) for c in columns]
        self.policy = policy or MonitoringPolicy()
        if not self.columns:
            raise FailedPrecondition("monitoring needs at least one column; the transformer gave none")
        if len(set(self.columns)) != len(self.columns):
            raise FailedPrecondition(f"monitoring columns must be unique, got {self.columns}")
        width = len(self.columns)
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim != 2 or ref.shape[1] != width:
            raise FailedPrecondition(
                f"the reference dataset must give rows of the {width} monitoring columns "
                f"({', '.join(self.columns[:5])}{', ...' if width > 5 else ''}), got an array of shape {ref.shape}"
            )
        if len(ref) < MIN_REFERENCE_ROWS:
            raise FailedPrecondition(
                f"the reference dataset has {len(ref)} usable rows; drift monitoring needs at least "
                f"{MIN_REFERENCE_ROWS}"
            )
        bad = ~np.isfinite(ref)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise FailedPrecondition(
                f"the reference dataset has a missing or non-finite value in column {self.columns[col]!r} "
                f"(row {row}); clean it or register another reference dataset"
            )
        self._keys = [f"c{i}" for i in range(width)]  # Evidently column names; never collide with its roles
        self._reference = pd.DataFrame(ref, columns=self._keys)
        self.reference_size = len(ref)
        self._min_rows = min(MIN_WINDOW_ROWS, self.policy.window)

        self._lock = threading.Lock()  # windows, counters, latest figures
        self._compute_lock = threading.Lock()  # one computation at a time
        self._inputs = _Ring(self.policy.window, width)
        self._pairs = _Ring(self.policy.window, 2)
        self._since_last = 0
        self._due_signalled = False
        self._drifted = False
        self._drift: DataDrift | None = None
        self._last_transition: Transition | None = None
        self._drift_history: deque[DataDrift] = deque(maxlen=history)
        self._error_history: deque[ErrorMetrics] = deque(maxlen=history)
        self.last_compute_seconds = 0.0
        self._sink = sink
        if sink is not None:
            sink.started(learner_id)

    # ---- observing (cheap, any thread)

    def observe_inputs(self, rows: np.ndarray) -> bool:
        """Add monitoring rows (n, len(columns)) to the window. True when a drift computation is
        due: at least `every` new rows since the last one and at least min(50, window) rows in
        the window. Returns True once per due computation, until `evaluate`/`compute` runs."""
        rows = _rows(rows, len(self.columns), "monitoring rows")
        with self._lock:
            self._inputs.extend(rows)
            self._since_last += len(rows)
            due = self._since_last >= self.policy.every and self._inputs.size >= self._min_rows
            if due and not self._due_signalled:
                self._due_signalled = True
                return True
            return False

    def observe_errors(self, predictions: np.ndarray, targets: np.ndarray) -> None:
        """Add prediction/target pairs (user units, regression; any shape, the same for both)."""
        pred = np.asarray(predictions, dtype=np.float64)
        true = np.asarray(targets, dtype=np.float64)
        if pred.shape != true.shape:
            raise InvalidArgument(f"predictions {pred.shape} and targets {true.shape} must have the same shape")
        pairs = _rows(np.column_stack((pred.ravel(), true.ravel())), 2, "predictions and targets")
        with self._lock:
            self._pairs.extend(pairs)

    # ---- computing (CPU-heavy, a worker thread)

    def evaluate(self) -> Computation:
        """Drift of the current input window (when it holds enough rows) and errors of the current
        pair window; records them in the history, hands them to the sink and says whether
        the dataset-drift state flipped (the state starts as 'not drifted')."""
        with self._compute_lock:
            with self._lock:
                inputs = self._inputs.snapshot()
                pairs = self._pairs.snapshot()
                self._since_last = 0
                self._due_signalled = False
            now = datetime.now(UTC)
            errors = error_metrics(pairs[:, 0], pairs[:, 1], now)
            drift = None
            if len(inputs) >= self._min_rows:
                started = time.perf_counter()
                drift = self._compute_drift(
                    self._reference, pd.DataFrame(inputs, columns=self._keys), self.columns,
                    self.policy.stattest_threshold, self.policy.drift_share, now,
                )
                self.last_compute_seconds = time.perf_counter() - started
            transition: Transition | None = None
            with self._lock:
                if drift is not None:
                    if drift.dataset_drift != self._drifted:
                        transition = "detected" if drift.dataset_drift else "cleared"
                        self._drifted = drift.dataset_drift
                    self._drift = drift
                    self._drift_history.append(drift.summary())
                self._error_history.append(errors)
                self._last_transition = transition
            if self._sink is not None:
                if drift is not None:
                    self._sink.drift_computed(self.learner_id, drift, self.last_compute_seconds)
                self._sink.errors_computed(self.learner_id, errors)
            return Computation(drift, errors, transition)

    def compute(self) -> tuple[DataDrift | None, ErrorMetrics]:
        """`evaluate()` as a pair; the flip is then in `last_transition`."""
        result = self.evaluate()
        return result.drift, result.errors

    @property
    def last_transition(self) -> Transition | None:
        """The flip of the latest computation: "detected", "cleared" or None. With concurrent
        callers of compute(), prefer `evaluate().transition`."""
        with self._lock:
            return self._last_transition

    @property
    def drifted(self) -> bool:
        """Dataset-drift state after the latest drift computation."""
        with self._lock:
            return self._drifted

    # ---- reading

    def report(self) -> MonitoringReport:
        """Latest drift figures, errors of the current window (computed now, cheap) and history."""
        with self._lock:
            pairs = self._pairs.snapshot()
            drift = self._drift
            drift_history = tuple(self._drift_history)
            error_history = tuple(self._error_history)
        errors = error_metrics(pairs[:, 0], pairs[:, 1])
        if self._sink is not None:
            self._sink.errors_computed(self.learner_id, errors)
        return MonitoringReport(
            learner_id=self.learner_id,
            reference_size=self.reference_size,
            drift=drift,
            errors=errors,
            error_history=error_history,
            drift_history=drift_history,
        )

    @property
    def window_size(self) -> int:
        """Inputs now in the window."""
        with self._lock:
            return self._inputs.size

    @property
    def error_window_size(self) -> int:
        """Prediction/target pairs now in the window."""
        with self._lock:
            return self._pairs.size
