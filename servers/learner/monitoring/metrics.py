"""The Learner's Prometheus series (seed 2.1.2, Figures 6-7; the Grafana dashboard in
`k8s/monitoring/` reads them): what the drift monitor computes (through `SINK`, a
`drift.MonitorSink`) and what the Learner's core counts (observations learned, predictions on
both fronts, versions saved, losses). Every series carries the `learner_id` label; `forget`
drops a deleted learner's series, `expose_on` serves them from a server's own registry.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:  # drift.py imports pandas; the series need only its records' fields
    from servers.learner.monitoring.drift import DataDrift, ErrorMetrics

_LABEL = ["learner_id"]
DATASET_DRIFT = Gauge("mlmesh_learner_dataset_drift", "1 when the latest window drifted from the reference.", _LABEL)
DRIFT_SHARE = Gauge("mlmesh_learner_drift_share", "Share of drifted features in the latest window.", _LABEL)
DRIFTED_FEATURES = Gauge("mlmesh_learner_drifted_features", "Drifted features in the latest window.", _LABEL)
FEATURE_DRIFT_SCORE = Gauge(
    "mlmesh_learner_feature_drift_score",
    "Drift test score of one feature in the latest window (K-S p-value: lower is more drift).",
    [*_LABEL, "feature"],
)
FEATURE_DRIFTED = Gauge(
    "mlmesh_learner_feature_drifted", "1 when the feature drifted in the latest window.", [*_LABEL, "feature"]
)
DRIFT_COMPUTE_SECONDS = Histogram(
    "mlmesh_learner_drift_compute_seconds", "Time one drift computation took.", _LABEL,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ERROR_ME = Gauge("mlmesh_learner_error_me", "Mean error (prediction - target) over the window.", _LABEL)
ERROR_MAE = Gauge("mlmesh_learner_error_mae", "Mean absolute error over the window.", _LABEL)
ERROR_MAPE = Gauge("mlmesh_learner_error_mape", "Mean absolute percentage error over the window, %.", _LABEL)
OVER_ESTIMATION_SHARE = Gauge(
    "mlmesh_learner_over_estimation_share", "Share of predictions above their target in the window.", _LABEL
)
UNDER_ESTIMATION_SHARE = Gauge(
    "mlmesh_learner_under_estimation_share", "Share of predictions below their target in the window.", _LABEL
)
ERROR_COUNT = Gauge("mlmesh_learner_error_count", "Prediction/target pairs in the error window.", _LABEL)
# Counted by the Learner's core (`learned`, `prediction_counter`, `version_saved` below).
OBSERVATIONS_LEARNED = Counter(
    "mlmesh_learner_observations_learned", "Observations (training pairs) learned.", _LABEL
)
PREDICTIONS = Counter("mlmesh_learner_predictions", "Predictions answered.", _LABEL)
VERSIONS_SAVED = Counter("mlmesh_learner_versions_saved", "Model versions saved to the Registry.", _LABEL)
RUNNING_LOSS = Gauge("mlmesh_learner_running_loss", "Mean training loss of recent micro-batches.", _LABEL)
VALIDATION_LOSS = Gauge(
    "mlmesh_learner_validation_loss", "Loss over the save policy's validation window.", _LABEL
)

METRICS: tuple[Gauge | Counter | Histogram, ...] = (
    DATASET_DRIFT, DRIFT_SHARE, DRIFTED_FEATURES, FEATURE_DRIFT_SCORE, FEATURE_DRIFTED,
    DRIFT_COMPUTE_SECONDS, ERROR_ME, ERROR_MAE, ERROR_MAPE, OVER_ESTIMATION_SHARE,
    UNDER_ESTIMATION_SHARE, ERROR_COUNT, OBSERVATIONS_LEARNED, PREDICTIONS, VERSIONS_SAVED,
    RUNNING_LOSS, VALIDATION_LOSS,
)
_exposed_on: set[int] = {id(REGISTRY)}
_exposed_lock = threading.Lock()


def sample_names() -> set[str]:
    """Every series name the learner metrics expose (counters with `_total`, histograms with
    `_bucket`/`_sum`/`_count`), e.g. to check dashboard queries."""
    names: set[str] = set()
    for metric in METRICS:
        for family in metric.describe():
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ("",))
            names.update(family.name + suffix for suffix in suffixes)
    return names


def expose_on(registry: CollectorRegistry) -> None:
    """Also serve the learner metrics from `registry` (each mesh server serves its own registry,
    `MeshServer.metrics.registry`, not the default one). Idempotent."""
    with _exposed_lock:
        if id(registry) in _exposed_on:
            return
        for metric in METRICS:
            registry.register(metric)
        _exposed_on.add(id(registry))


def init_series(learner_id: str) -> None:
    """Create a learner's counters at 0 and its error count, so it shows up in the dashboard's
    learner list before it first learns or predicts. A `Monitor` calls it through `SINK`."""
    for counter in (OBSERVATIONS_LEARNED, PREDICTIONS, VERSIONS_SAVED):
        counter.labels(learner_id)
    ERROR_COUNT.labels(learner_id)


def forget(learner_id: str) -> None:
    """Remove every series of a deleted learner."""
    for metric in METRICS:
        metric.remove_by_labels({"learner_id": learner_id})


def publish_drift(learner_id: str, drift: DataDrift) -> None:
    DATASET_DRIFT.labels(learner_id).set(1.0 if drift.dataset_drift else 0.0)
    DRIFT_SHARE.labels(learner_id).set(drift.drift_share)
    DRIFTED_FEATURES.labels(learner_id).set(drift.drifted_features)
    for feature in drift.features:
        FEATURE_DRIFT_SCORE.labels(learner_id, feature.name).set(feature.score)
        FEATURE_DRIFTED.labels(learner_id, feature.name).set(1.0 if feature.drifted else 0.0)


def publish_errors(learner_id: str, errors: ErrorMetrics) -> None:
    ERROR_COUNT.labels(learner_id).set(errors.count)
    if errors.count == 0:  # no figures yet: leave the series absent rather than a misleading 0
        return
    ERROR_ME.labels(learner_id).set(errors.me)
    ERROR_MAE.labels(learner_id).set(errors.mae)
    ERROR_MAPE.labels(learner_id).set(errors.mape)
    OVER_ESTIMATION_SHARE.labels(learner_id).set(errors.over_estimation_share)
    UNDER_ESTIMATION_SHARE.labels(learner_id).set(errors.under_estimation_share)


def learned(learner_id: str, observations: int, running_loss: float, validation_loss: float) -> None:
    """A learning step learned `observations` more pairs (called only when it learned some)."""
    OBSERVATIONS_LEARNED.labels(learner_id).inc(observations)
    RUNNING_LOSS.labels(learner_id).set(running_loss)
    VALIDATION_LOSS.labels(learner_id).set(validation_loss)


def prediction_counter(learner_id: str) -> Counter:
    """The learner's predictions counter: predictions answered on either front (LearnerService.Predict,
    PredictStream, ModelInfer, REST infer). The core keeps it, so a prediction costs no label lookup."""
    return PREDICTIONS.labels(learner_id)


def version_saved(learner_id: str) -> None:
    VERSIONS_SAVED.labels(learner_id).inc()


class PrometheusSink:
    """A `drift.MonitorSink` that sets the series above."""

    def started(self, learner_id: str) -> None:
        init_series(learner_id)

    def drift_computed(self, learner_id: str, drift: DataDrift, seconds: float) -> None:
        DRIFT_COMPUTE_SECONDS.labels(learner_id).observe(seconds)
        publish_drift(learner_id, drift)

    def errors_computed(self, learner_id: str, errors: ErrorMetrics) -> None:
        publish_errors(learner_id, errors)


SINK = PrometheusSink()
