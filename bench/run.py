"""`make bench`: every benchmark, each printing ratios against a baseline from the same run."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench import datasets, training

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    print("== datasets: 1 GB through the front door (MLMESH_BENCH_MB to change) ==")
    print(datasets.report(datasets.run()))
    print()
    print("== ledger: contract deploys on Anvil ==")
    from bench import ledger_deploys

    ledger_deploys.main()
    print()
    print("== training-job overhead: the digits CNN recipe ==")
    print(training.report(training.run()))
    print()
    print("== ONNX vs PyTorch eager (the digits CNN), translation time ==")
    subprocess.run([str(REPO / ".venv-ml/bin/python"), "-m", "bench.onnx_inference"], cwd=REPO, check=True)
    print()
    print("== Learner predict path vs MLServer 1.7 (Open Inference Protocol over gRPC, same model shape) ==")
    from bench import learner_predict, learner_serving

    result = learner_predict.run(others={"Learner": learner_serving.learner})
    print(learner_predict.report(result))
    print(f"Learner learn stream: {learner_serving.LEARNED['samples_per_s']:.0f} samples/s "
          f"({learner_serving.LEARN_ROWS} rows, micro-batches of 32, prequential validation MSE "
          f"{learner_serving.LEARNED['final_validation_mse']:.4f})")
    print()
    print("== Learner predict path with drift monitoring on (default policy) vs off ==")
    from bench import learner_monitoring

    print(learner_monitoring.report(learner_monitoring.run()))
    print()
    print("== Learner predict path: CPU per request of our own code, without the transport (load-independent) ==")
    subprocess.run([str(REPO / ".venv-ml/bin/python"), "-m", "bench.learner_path"], cwd=REPO, check=True)
    subprocess.run([str(REPO / ".venv-ml/bin/python"), "-m", "bench.validation_cost"], cwd=REPO, check=True)
    print()
    print("== What each layer of a unary ModelInfer costs grpc.aio (server CPU per request; ratio vs the raw echo) ==")
    from bench import grpc_layers

    grpc_layers.report(grpc_layers.measure())

    print()
    print("== The front door under concurrency: the Learner's V2 model direct vs through Envoy with a JWT ==")
    from bench import front_door

    print(front_door.report(front_door.run()))

    print()
    print("== Optimizer environment: GridShift-v0 steps/s with the power flow vs a bare pandapower.runpp loop ==")
    subprocess.run([str(REPO / ".venv-rl/bin/python"), "-m", "bench.gridshift_env"], cwd=REPO, check=True)

    print()
    print("== Optimizer agents: each algorithm's held-out (SCR+SSR)/2 vs the greedy baseline, trained in this run ==")
    subprocess.run([str(REPO / ".venv-rl/bin/python"), "-m", "bench.optimizer_agents", "--steps", "5000"], cwd=REPO,
                   check=True)

    print()
    print("== Provenance: export + offline verify of a 1 GB artifact vs reading and hashing it once ==")
    from bench import provenance

    provenance.main()

    print()
    print("== TFF DP-FedAvg: seconds per round and accuracy (no noise, noise multiplier 1) vs central training ==")
    from bench import federation_tff

    federation_tff.main()

    print()
    print("== NVIDIA FLARE FedAvg: seconds per round and accuracy by DP filter (none, percentile, SVT) vs central ==")
    from bench import federation_flare

    federation_flare.main()

    print()
    print("== Federation: FedPATE on Flower, privacy vs accuracy on digits, server vs app directly, s/round ==")
    from bench import federation

    federation.main()


if __name__ == "__main__":
    main()
