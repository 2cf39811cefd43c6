"""Tests that run INSIDE the ML virtualenv (`.venv-ml/`), hence the directory's name: the Learner's
backends, transformers, explainer, monitoring and core import torch, TensorFlow, Captum and
Evidently in-process, as the Learner server does. `make test` runs them with

    .venv-ml/bin/python -m pytest --confcutdir=tests/ml_venv tests/ml_venv

(`--confcutdir` keeps the mesh-side fixtures of tests/conftest.py, which import the mesh's own
dependencies, out of this run; the mesh-side run ignores this directory.)
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import datetime as dt  # noqa: E402 - after the TensorFlow log setting
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FEATURES = 6


@pytest.fixture
def make_live(tmp_path):
    """`make_live(learner_id=..., organization=..., name=...)`: a live learner in-process (real
    scikit-learn backend trained a little, tabular transformer of FEATURES features, Evidently
    monitor); closed at the end of the test."""
    from servers.learner.domain.live import LiveLearner
    from servers.learner.domain.records import LearnerRecord, Spec, validate_spec
    from servers.learner.ml.backends import make_backend
    from servers.learner.ml.transformers import make_transformer
    from servers.learner.monitoring.drift import Monitor, MonitoringPolicy

    made = []

    def make(learner_id: str = "00000000-0000-4000-8000-000000000001", organization: str = "org",
             name: str = "live") -> LiveLearner:
        spec = validate_spec(Spec(backend="sklearn", task="regression", transformer="tabular",
                                  transformer_params={"feature_count": FEATURES}, reference_dataset_id="ref"))
        transformer = make_transformer("tabular", "regression", {"feature_count": FEATURES})
        backend = make_backend("sklearn", "regression", {"random_state": 0}, transformer.input_shape, None)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(256, FEATURES)).astype(np.float32)
        for i in range(0, 256, 32):
            backend.learn(X[i:i + 32], X[i:i + 32].sum(axis=1))
        monitor = Monitor(learner_id, transformer.monitor_columns, rng.normal(size=(100, FEATURES)),
                          MonitoringPolicy(window=1000, every=1000))
        record = LearnerRecord(learner_id, name, organization, "dev", spec, "READY", "", "", 0, 0, None, {},
                               dt.datetime.now(dt.UTC), None)
        work = tmp_path / learner_id
        work.mkdir()
        live = LiveLearner(record, backend, transformer, monitor, ThreadPoolExecutor(1), work_dir=work,
                           running_loss_alpha=0.1)
        made.append(live)
        return live

    yield make
    for live in made:
        live.close()
