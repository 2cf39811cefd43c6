"""Ordering of the end-to-end tests, which share one session-scoped `stack` (tests/fixtures/mesh.py).

A test marked `runs_last` runs after every other collected test, whatever its file is called.
The walk-through of `make demo` (test_demo.py) is the one so marked. It does not need anything the
other tests leave, and leaves nothing that breaks them (it only adds consistent datasets and trained
models for its organization); it runs last on purpose:

* it is the acceptance test: `mlmesh demo` exactly as a user runs it after `make up`. Run after the
  tests that stop, `kill -9` and restart the stack's processes (test_integrity_and_restarts.py, the
  Trainer's kill -9 in test_models_via_envoy.py), it proves that the stack they leave behind, restarted
  by `devstack up` on the same data dir, still serves the whole walk-through end to end;
* it is the slowest test (two trainings, two translations, ONNX parity): quicker failures report first.
"""

from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "runs_last: run after every other test of the session (tests/e2e/conftest.py)")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # A stable partition: the order within each group (file, then definition order) is kept.
    last = [item for item in items if item.get_closest_marker("runs_last")]
    if last:
        items[:] = [item for item in items if not item.get_closest_marker("runs_last")] + last
