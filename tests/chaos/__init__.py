"""Chaos: a mixed workload through the front door while components are killed with -9 (issue 16).

`python -m tests.chaos --seed 7 --kills 60` (what `make chaos` runs) starts a devstack of its own
in a temporary data dir with free ports, exactly as `make up` does, and then, for `--kills` rounds:

* the workload keeps running in threads through Envoy only: dataset uploads over native gRPC and
  over REST, downloads of datasets already acknowledged, and a Learn stream of tabular
  observations to one learner (saves on improvement);
* the killer picks a component (PostgreSQL, Anvil, Ledger, Registry, Trainer, Translator,
  Learner, Envoy) and a moment with the seeded generator, sends SIGKILL to the process in its pid
  file, and restarts it with `devstack up`, as an operator would.

Then it stops the workload, brings the stack up once more and checks every operation the client
saw acknowledged: each acknowledged dataset downloads byte-identical (SHA-256 as acknowledged)
and its provenance is consistent with the chain; the learner's `observations_learned` is at least
what its last acknowledgement said; no dataset is visible that was never attempted or whose
provenance is inconsistent (an orphan). An upload whose response was lost in a kill may have
completed: it is counted as "unacknowledged, complete", not as an orphan, if it is whole and
consistent. It prints a table (kills per component, operations acknowledged, intact, orphans) and
exits non-zero on any failure. The seed fixes the kill schedule (which component, when), so a
failure replays the same way; thread timing is not seeded.
"""
