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
