"""The Optimizer's training and evaluation worker. It runs in `.venv-rl` as its own process
(`python -m servers.optimizer.worker train --spec spec.json --out DIR`), as a job container would:
it reads a job spec, trains a Stable-Baselines3 agent on `mlmesh/GridShift-v0`, evaluates it with
`evaluate_policy` on held-out days beside the baselines, and writes the policy and the figures to
DIR. Progress goes to stdout as one JSON object per line."""
