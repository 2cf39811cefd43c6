"""Chaos: a mixed workload through the front door while components are killed with -9 (issue 16).

`python -m tests.chaos --seed 7 --kills 60` (what `make chaos` runs) starts a devstack of its own
in a temporary data dir with free ports, exactly as `make up` does, and then, for `--kills` rounds:

* the workload keeps running in threads through Envoy only: dataset uploads over native gRPC and
  over REST, downloads of datasets already acknowledged, a Learn stream of tabular
  observations to one learner (saves on improvement), and two threads that each register a model
  with the logistic-regression recipe of examples/recipes/digits-logreg on the digits dataset,
  follow it while the Trainer trains it and then translate it to ONNX, so that a training job or a
  translation is in flight most of the time and kills land in the middle of them;
* the killer picks a component (PostgreSQL, Anvil, Ledger, Registry, Trainer, Translator,
  Learner, Envoy) and a moment with the seeded generator, sends SIGKILL to the process in its pid
  file, and restarts it with `devstack up`, as an operator would.

Then it stops the workload, brings the stack up once more and checks every operation the client
saw acknowledged: each acknowledged dataset downloads byte-identical (SHA-256 as acknowledged)
and its provenance is consistent with the chain; the learner's `observations_learned` is at least
what its last acknowledgement said; each acknowledged model ends TRAINED, downloads with its
res_hash and is verified on the chain, or, when a kill interrupted its job, FAILED with a reason
(never stuck in PENDING or TRAINING; the reasons are printed); each acknowledged translation
downloads with its acknowledged SHA-256 and its lineage node is VERIFIED against its contract; no
dataset, model or translation is visible that was never attempted or is incomplete or
inconsistent (an orphan). An operation whose response was lost in a kill may have completed: it
is counted as "unacknowledged, complete", not as an orphan, if it is whole and consistent. It prints a table (kills per component, operations acknowledged, intact, orphans) and
exits non-zero on any failure. The seed fixes the kill schedule (which component, when), so a
failure replays the same way; thread timing is not seeded.
"""
