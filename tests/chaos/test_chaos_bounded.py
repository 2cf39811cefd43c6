"""The bounded chaos run `make test` includes (`make chaos` runs the long one): a devstack of its
own, the mixed workload through Envoy (uploads, downloads, Learn, models trained and translated),
8 SIGKILLs of seeded components at seeded moments (one of each component), then every
acknowledged operation checked (tests/chaos/__init__.py)."""

from __future__ import annotations

import pytest

from tests.chaos.run import COMPONENTS, run

pytestmark = pytest.mark.slow


def test_every_acknowledged_operation_survives_a_kill_of_each_component(capsys):
    # Prepare + Execute: one kill of each component, in a seeded order (components given one by one).
    result = run(seed=16, kills=len(COMPONENTS), components=COMPONENTS, gap=(1.0, 3.0),
                 log=lambda line: None, order=COMPONENTS)
    with capsys.disabled():
        print("\n" + result.table())

    # Assert
    assert sum(result.kills.values()) >= len(COMPONENTS) - 1, result.kills  # a process may be down already
    assert result.acknowledged["dataset (final check)"] > 0
    assert result.acknowledged["model (final check)"] > 0  # registered, trained (or failed by a kill), checked
    assert result.ok, result.table()
