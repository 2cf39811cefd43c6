"""The Learner's monitoring: exact error figures, Evidently drift (detected, located, cleared),
bounded windows, validation, a concurrency smoke test, the Prometheus series and the Grafana
dashboard's queries. Real numpy, Evidently and prometheus_client throughout; no mocks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.monitoring import metrics
from servers.learner.monitoring.drift import Monitor, MonitoringPolicy, error_metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "k8s" / "monitoring" / "grafana-dashboard-learner.json"
SCRAPE = ROOT / "k8s" / "monitoring" / "prometheus-scrape.yml"


def normal(seed: int, rows: int, cols: int, shift: np.ndarray | float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, cols)) + shift


# --------------------------------------------------------------------------- errors


def test_error_metrics_are_exact_on_hand_made_numbers():
    pred = np.array([12.0, 8.0, 5.0, 3.0, 7.0])
    true = np.array([10.0, 10.0, 5.0, 0.0, 4.0])
    # errors: +2, -2, 0, +3, +3
    e = error_metrics(pred, true)
    assert e.count == 5
    assert e.me == pytest.approx(6 / 5, abs=1e-12)
    assert e.mae == pytest.approx(10 / 5, abs=1e-12)
    # the zero target is left out: |2|/10, |-2|/10, 0/5, |3|/4 over 4 pairs
    assert e.mape == pytest.approx((0.2 + 0.2 + 0.0 + 0.75) / 4 * 100, abs=1e-12)
    assert e.over_estimation_share == pytest.approx(3 / 5)
    assert e.under_estimation_share == pytest.approx(1 / 5)
    assert e.compute_time.tzinfo is not None


def test_error_metrics_of_nothing_and_of_zero_targets():
    empty = error_metrics(np.array([]), np.array([]))
    assert (empty.count, empty.me, empty.mae, empty.mape) == (0, 0.0, 0.0, 0.0)
    zeros = error_metrics(np.array([1.0, -1.0]), np.array([0.0, 0.0]))
    assert (zeros.count, zeros.me, zeros.mae, zeros.mape) == (2, 0.0, 1.0, 0.0)


def test_error_window_is_bounded_to_the_latest_pairs():
    m = Monitor("err-window", ["a"], normal(0, 40, 1), MonitoringPolicy(window=50, every=10))
    m.observe_errors(np.full(30, 100.0), np.zeros(30))  # will be pushed out entirely
    m.observe_errors(np.arange(60, dtype=float) + 1.0, np.arange(60, dtype=float))  # error +1 each
    report = m.report()
    assert m.error_window_size == 50
    assert report.errors.count == 50
    assert report.errors.me == 1.0 and report.errors.over_estimation_share == 1.0
    with pytest.raises(InvalidArgument, match="same shape"):
        m.observe_errors(np.zeros(3), np.zeros(4))
    with pytest.raises(InvalidArgument, match="finite"):
        m.observe_errors(np.array([np.nan]), np.array([1.0]))


# --------------------------------------------------------------------------- policy and reference


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 49}, "monitoring.window"),
        ({"window": 100_001}, "monitoring.window"),
        ({"window": 100, "every": 0}, "monitoring.every"),
        ({"window": 100, "every": 101}, "monitoring.every"),
        ({"drift_share": 0.0}, "monitoring.drift_share"),
        ({"drift_share": 1.5}, "monitoring.drift_share"),
        ({"stattest_threshold": 1.0}, "monitoring.stattest_threshold"),
        ({"stattest_threshold": 0.0}, "monitoring.stattest_threshold"),
        ({"window": 100.0}, "monitoring.window"),
    ],
)
def test_policy_rejects_out_of_range_values_naming_the_field(kwargs, field):
    with pytest.raises(InvalidArgument, match=re.escape(field)):
        MonitoringPolicy(**kwargs)


def test_policy_from_proto_fields_fills_defaults():
    assert MonitoringPolicy.from_fields() == MonitoringPolicy(500, 100, 0.5, 0.05)
    assert MonitoringPolicy.from_fields(window=60) == MonitoringPolicy(60, 60, 0.5, 0.05)
    assert MonitoringPolicy.from_fields(200, 20, 0.25, 0.01) == MonitoringPolicy(200, 20, 0.25, 0.01)


def test_reference_is_validated():
    with pytest.raises(FailedPrecondition, match="29 usable rows.*at least 30"):
        Monitor("ref", ["a", "b"], normal(0, 29, 2))
    with pytest.raises(FailedPrecondition, match=r"2 monitoring columns.*shape \(100, 3\)"):
        Monitor("ref", ["a", "b"], normal(0, 100, 3))
    bad = normal(0, 100, 2)
    bad[7, 1] = np.nan
    with pytest.raises(FailedPrecondition, match="'b' \\(row 7\\)"):
        Monitor("ref", ["a", "b"], bad)
    m = Monitor("ref", ["a", "b"], normal(0, 30, 2))
    assert m.report().reference_size == 30
    with pytest.raises(InvalidArgument, match=r"shape \(n, 2\)"):
        m.observe_inputs(normal(0, 5, 3))


# --------------------------------------------------------------------------- windows and drift


def test_input_window_is_bounded_and_due_after_every_rows():
    m = Monitor("due", ["a", "b"], normal(0, 200, 2), MonitoringPolicy(window=80, every=30))
    assert m.observe_inputs(normal(1, 29, 2)) is False  # < every, < 50 rows
    assert m.observe_inputs(normal(2, 20, 2)) is False  # 49 rows: every reached, window too small
    assert m.observe_inputs(normal(3, 1, 2)[0]) is True  # one 1-D row: 50 rows
    assert m.observe_inputs(normal(4, 40, 2)) is False  # signalled once until computed
    assert m.window_size == 80
    drift, _errors = m.compute()
    assert drift is not None and drift.window_size == 80
    assert m.observe_inputs(normal(5, 29, 2)) is False
    assert m.observe_inputs(normal(6, 1, 2)) is True


def test_no_drift_before_the_window_holds_enough_inputs():
    m = Monitor("early", ["a"], normal(0, 100, 1), MonitoringPolicy(window=100, every=10))
    m.observe_inputs(normal(1, 49, 1))
    drift, errors = m.compute()
    assert drift is None and errors.count == 0
    assert m.report().drift is None


def test_drift_is_not_detected_on_the_reference_distribution_and_is_located_after_a_shift():
    columns = [f"lag_{i}" for i in range(12)]
    reference = normal(10, 1000, 12)
    policy = MonitoringPolicy(window=500, every=100, drift_share=0.5, stattest_threshold=0.05)
    m = Monitor("shift", columns, reference, policy)
    m.observe_inputs(normal(11, 500, 12))
    calm = m.evaluate()
    assert calm.drift is not None and not calm.drift.dataset_drift
    assert calm.transition is None and calm.drift.drift_share < 0.5
    assert calm.drift.feature_count == 12 and calm.drift.window_size == 500
    assert {f.method for f in calm.drift.features} == {"K-S p_value"}
    assert {f.threshold for f in calm.drift.features} == {0.05}
    assert calm.drift.compute_time.tzinfo == UTC

    shifted = [0, 2, 3, 5, 7, 8, 11]  # 7 of 12 > drift_share
    shift = np.zeros(12)
    shift[shifted] = 0.6
    m.observe_inputs(normal(12, 500, 12, shift))
    moved = m.evaluate()
    drift = moved.drift
    assert drift is not None and drift.dataset_drift and moved.transition == "detected"
    drifted = {f.name for f in drift.features if f.drifted}
    assert {columns[i] for i in shifted} <= drifted
    assert drift.drifted_features == len(drifted) and drift.drift_share == len(drifted) / 12
    for f in drift.features:
        assert f.drifted == (f.score <= 0.05)


def test_transitions_detected_then_cleared_and_history():
    m = Monitor("flip", ["a", "b", "c"], normal(20, 400, 3), MonitoringPolicy(window=100, every=100))
    steps = [(21, 0.0, None), (22, 2.0, "detected"), (23, 2.0, None), (24, 0.0, "cleared"), (25, 0.0, None)]
    for seed, shift, expected in steps:
        assert m.observe_inputs(normal(seed, 100, 3, shift)) is True
        result = m.evaluate()
        assert result.transition == expected, (seed, result.drift)
        assert m.last_transition == expected
        assert m.drifted == (shift > 0)
    report = m.report()
    assert [d.dataset_drift for d in report.drift_history] == [False, True, True, False, False]
    assert all(d.features == () for d in report.drift_history)
    assert len(report.drift.features) == 3 and len(report.error_history) == 5


def test_history_is_bounded():
    m = Monitor("hist", ["a"], normal(0, 60, 1), MonitoringPolicy(window=50, every=50), history=3)
    for seed in range(5):
        m.observe_inputs(normal(seed, 50, 1))
        m.compute()
    report = m.report()
    assert len(report.drift_history) == 3 and len(report.error_history) == 3
    times = [d.compute_time for d in report.drift_history]
    assert times == sorted(times)


def test_figures_match_evidentlys_data_drift_preset():
    """The Monitor runs Evidently's DataDriftTable (cheap); the new API's DataDriftPreset (which
    renders plotly widgets on every run) gives the same per-column p-values and verdicts."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = ["u", "v", "w", "x"]
    reference = normal(30, 300, 4)
    current = normal(31, 120, 4, np.array([0.0, 0.5, 0.0, -0.4]))
    m = Monitor("preset", columns, reference, MonitoringPolicy(window=120, every=120, drift_share=0.5))
    m.observe_inputs(current)
    drift, _ = m.compute()

    definition = DataDefinition(numerical_columns=columns)
    snapshot = Report([DataDriftPreset(columns=columns, method="ks", threshold=0.05, drift_share=0.5)],
                      include_tests=True).run(
        Dataset.from_pandas(pd.DataFrame(current, columns=columns), data_definition=definition),
        Dataset.from_pandas(pd.DataFrame(reference, columns=columns), data_definition=definition),
    )
    result = snapshot.dict()
    count = next(r["value"] for r in result["metrics"] if r["config"]["type"].endswith("DriftedColumnsCount"))
    scores = {r["config"]["column"]: r["value"] for r in result["metrics"]
              if r["config"]["type"].endswith("ValueDrift")}
    verdicts = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in result["tests"]
                if t["metric_config"]["params"]["type"].endswith("ValueDrift")}
    assert drift.drifted_features == count["count"] and drift.drift_share == pytest.approx(count["share"])
    assert {f.name: f.score for f in drift.features} == pytest.approx(scores, rel=1e-9)
    assert {f.name: f.drifted for f in drift.features} == verdicts
    assert verdicts["v"] and verdicts["x"]


def test_observing_goes_on_while_a_computation_runs_in_another_thread():
    m = Monitor("threads", [f"f{i}" for i in range(8)], normal(40, 500, 8),
                MonitoringPolicy(window=200, every=20))
    m.observe_inputs(normal(41, 200, 8))
    failures: list[BaseException] = []
    stop = threading.Event()
    observed = 0

    def observe():
        nonlocal observed
        rng = np.random.default_rng(42)
        try:
            while not stop.is_set():
                m.observe_inputs(rng.normal(size=(7, 8)))
                m.observe_errors(rng.normal(size=7), rng.normal(size=7))
                observed += 1
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=observe)
    thread.start()
    try:
        results = [m.evaluate() for _ in range(4)]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not failures and not thread.is_alive()
    assert observed > 4  # observation was not blocked for the whole computation
    for result in results:
        assert result.drift is not None and result.drift.window_size == 200
        assert result.errors.count <= 200
    assert m.window_size == 200 and m.error_window_size == 200


# --------------------------------------------------------------------------- Prometheus


def _series(text: str, learner_id: str) -> set[str]:
    return {line.split("{", 1)[0] for line in text.splitlines()
            if not line.startswith("#") and f'learner_id="{learner_id}"' in line}


def test_metrics_are_exported_with_the_learner_label_and_forgotten():
    learner_id = "prom-7e1"
    m = Monitor(learner_id, ["power", "temp"], normal(50, 200, 2), MonitoringPolicy(window=60, every=60),
                sink=metrics.SINK)
    m.observe_inputs(normal(51, 60, 2, np.array([3.0, 0.0])))
    m.observe_errors(np.array([2.0, 4.0]), np.array([1.0, 5.0]))
    m.evaluate()
    metrics.OBSERVATIONS_LEARNED.labels(learner_id).inc(32)
    metrics.RUNNING_LOSS.labels(learner_id).set(0.25)

    text = generate_latest(REGISTRY).decode()
    names = _series(text, learner_id)
    for name in ("mlmesh_learner_dataset_drift", "mlmesh_learner_drift_share", "mlmesh_learner_drifted_features",
                 "mlmesh_learner_feature_drift_score", "mlmesh_learner_feature_drifted",
                 "mlmesh_learner_error_me", "mlmesh_learner_error_mae", "mlmesh_learner_error_mape",
                 "mlmesh_learner_over_estimation_share", "mlmesh_learner_under_estimation_share",
                 "mlmesh_learner_observations_learned_total", "mlmesh_learner_predictions_total",
                 "mlmesh_learner_versions_saved_total", "mlmesh_learner_running_loss",
                 "mlmesh_learner_drift_compute_seconds_count"):
        assert name in names, name
    assert f'mlmesh_learner_dataset_drift{{learner_id="{learner_id}"}} 1.0' in text
    assert f'mlmesh_learner_feature_drifted{{feature="power",learner_id="{learner_id}"}} 1.0' in text
    assert f'mlmesh_learner_error_me{{learner_id="{learner_id}"}} 0.0' in text
    assert f'mlmesh_learner_error_mape{{learner_id="{learner_id}"}} 60.0' in text
    assert f'mlmesh_learner_observations_learned_total{{learner_id="{learner_id}"}} 32.0' in text

    # a server's own registry serves the same series
    own = CollectorRegistry()
    metrics.expose_on(own)
    metrics.expose_on(own)  # idempotent
    assert _series(generate_latest(own).decode(), learner_id) == names

    other = Monitor("prom-other", ["power"], normal(52, 40, 1), sink=metrics.SINK)
    metrics.forget(learner_id)
    after = generate_latest(REGISTRY).decode()
    assert _series(after, learner_id) == set()
    assert "mlmesh_learner_predictions_total" in _series(after, other.learner_id)
    metrics.forget(other.learner_id)


def test_the_drift_logic_needs_no_prometheus_and_a_monitor_without_a_sink_exports_nothing():
    code = ("import sys; import servers.learner.monitoring.drift; "
            "sys.exit('prometheus_client' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
    m = Monitor("prom-silent", ["power"], normal(50, 200, 1), MonitoringPolicy(window=60, every=60))
    m.observe_inputs(normal(51, 60, 1))
    m.observe_errors(np.array([2.0]), np.array([1.0]))
    m.evaluate()
    assert _series(generate_latest(REGISTRY).decode(), "prom-silent") == set()


# --------------------------------------------------------------------------- dashboard and scrape config

PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "by", "without", "on", "ignoring",
    "avg_over_time", "max_over_time", "min_over_time", "last_over_time", "topk", "bottomk", "and", "or",
    "unless", "label_values", "clamp_min", "clamp_max", "histogram_quantile", "offset",
}


def _exprs(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_exprs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_exprs(value))
    return found


def _metric_names(expr: str) -> set[str]:
    """Bare identifiers of a PromQL expression: label matchers, ranges, durations, grouping
    labels, strings and Grafana variables removed."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)
    return {w for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr) if w not in PROMQL_WORDS}


def test_dashboard_queries_name_only_metrics_defined_in_monitoring():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Model performance", "Data drift"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    learner_query = variables["learner_id"]["query"]["query"]
    assert learner_query.startswith("label_values(") and learner_query.endswith(", learner_id)")

    defined = metrics.sample_names()
    exprs = _exprs(dashboard["panels"])
    assert len(exprs) >= 20
    used: set[str] = set()
    for expr in [*exprs, learner_query.removeprefix("label_values(").removesuffix(", learner_id)")]:
        names = _metric_names(expr)
        assert names, expr
        assert names <= defined, (expr, names - defined)
        used |= names
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            for target in panel["targets"]:
                assert 'learner_id=~"$learner_id"' in target["expr"], target["expr"]
    # Figures 6 and 7: every error and drift series is on the dashboard
    for name in ("mlmesh_learner_error_me", "mlmesh_learner_error_mae", "mlmesh_learner_error_mape",
                 "mlmesh_learner_over_estimation_share", "mlmesh_learner_under_estimation_share",
                 "mlmesh_learner_dataset_drift", "mlmesh_learner_drift_share",
                 "mlmesh_learner_feature_drift_score", "mlmesh_learner_running_loss",
                 "mlmesh_learner_validation_loss", "mlmesh_learner_observations_learned_total",
                 "mlmesh_learner_predictions_total"):
        assert name in used, name
    # the checker itself catches a foreign metric
    assert _metric_names('rate(mlmesh_learner_typo_total{learner_id=~"$learner_id"}[5m])') - defined


def test_scrape_config_has_the_five_servers():
    config = yaml.safe_load(SCRAPE.read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "mlmesh-registry": ["127.0.0.1:9101"],
        "mlmesh-ledger": ["127.0.0.1:9102"],
        "mlmesh-trainer": ["127.0.0.1:9103"],
        "mlmesh-translator": ["127.0.0.1:9104"],
        "mlmesh-learner": ["127.0.0.1:9105"],
    }


def test_the_monitoring_ring_keeps_the_newest_rows_in_order_across_wraps():
    """The window's ring against a plain list cut to capacity: single rows, blocks that wrap the end,
    and blocks larger than the ring, in random order."""
    from servers.learner.monitoring.drift import _Ring

    rng = np.random.default_rng(5)
    ring, reference = _Ring(7, 3), []
    for step in range(300):
        n = int(rng.choice([1, 1, 2, 5, 6, 7, 9, 20]))
        rows = rng.normal(size=(n, 3)) + step
        ring.extend(rows)
        reference = (reference + list(rows))[-7:]
        assert ring.size == len(reference)
        np.testing.assert_array_equal(ring.snapshot(), np.asarray(reference))
