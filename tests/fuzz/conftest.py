"""Hypothesis profiles of the fuzz suite, chosen by MLMESH_FUZZ_PROFILE:

* `ci` (default, in `make test`): few examples per RPC and path, derandomized, so a run is
  bounded (a few minutes on 2 cores) and a failure replays exactly;
* `long` (`make fuzz`): many examples, random seeds; a failure prints the `@reproduce_failure`
  blob to replay it. MLMESH_FUZZ_EXAMPLES overrides the count of either.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture))
settings.register_profile("ci", max_examples=6, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=150, derandomize=False, **_COMMON)
_profile = os.environ.get("MLMESH_FUZZ_PROFILE", "ci")
settings.load_profile(_profile)
if examples := os.environ.get("MLMESH_FUZZ_EXAMPLES"):
    settings.register_profile("override", parent=settings.get_profile(_profile), max_examples=int(examples))
    settings.load_profile("override")
