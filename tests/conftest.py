"""Shared fixtures. Each real component has its own fixture module."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.chain",
    "tests.fixtures.envoy",
    "tests.fixtures.mesh",
    "tests.fixtures.trainer",
    "tests.fixtures.translator",
]
