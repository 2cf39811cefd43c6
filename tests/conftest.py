"""Shared fixtures. Each real component has its own fixture module."""

# tests/ml_venv runs inside the ML virtualenv (.venv-ml/), in its own pytest run (see its conftest).
# tests/rl_venv likewise runs inside .venv-rl (the Optimizer's grid environment).
# tests/provenance_venv runs inside .venv-provenance (third-party verifiers), driven by tests/e2e.
collect_ignore = ["ml_venv", "rl_venv", "provenance_venv"]

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.chain",
    "tests.fixtures.envoy",
    "tests.fixtures.mesh",
    "tests.fixtures.trainer",
    "tests.fixtures.translator",
    "tests.fixtures.learner",
    "tests.fixtures.mosquitto",
]


def pytest_addoption(parser):
    group = parser.getgroup("mlmesh")
    group.addoption("--target", default=None, metavar="HOST:PORT",
                    help="run tests/e2e against this running front door (e.g. one `make up` started) instead of "
                         "starting a stack; tests that stop or kill its processes are skipped")
    group.addoption("--data-dir", default=".mlmesh", metavar="DIR",
                    help="with --target: the deployment's data dir (its identity keys mint the tokens)")


def pytest_configure(config):
    config.addinivalue_line("markers", "controls_processes: stops, kills or restarts the stack's processes, or "
                                       "edits its files; runs only on a stack the tests start")
