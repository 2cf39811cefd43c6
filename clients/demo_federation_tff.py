"""The TFF step of `make demo-federation` (clients/demo_federation.py calls it with its `Demo`):
DP-FedAvg on TensorFlow Federated over 3 simulated clients on scikit-learn's digits, through the
front door, ending with the Keras model registered with its provenance and translated to ONNX."""

from __future__ import annotations

import time


def tff(demo, dataset_id: str) -> dict:
    """TFF DP-FedAvg: 3 clients (Dirichlet alpha 1), 10 rounds, noise multiplier 0.3, clip norm 1.
    `demo` is clients.demo_federation.Demo (console, say, run_job, registered, translate)."""
    rounds = 10
    demo.say(f"TFF DP-FedAvg: digits over 3 clients (Dirichlet alpha 1), {rounds} rounds, noise multiplier 0.3")
    body = {"display_name": "demo tff digits",
            "data": {"dataset_id": dataset_id, "target_column": "label", "server_fraction": 0.3, "seed": 0},
            "tff": {"imb_parameter": 1.0, "dp_parameter": 0.3, "n_clients": 3, "n_samples": 1000,
                    "num_rounds": rounds, "epochs": 1, "batch_size": 32, "clip_norm": 1.0}}
    started = time.monotonic()
    job = demo.run_job(body)
    per_round = [float(r.get("seconds", 0)) for r in job["rounds"]]
    demo.console.print(f"  {sum(per_round) / len(per_round):.2f} s per round on average (the first "
                       f"{per_round[0]:.1f} s, tracing TFF's computations); the whole job "
                       f"{time.monotonic() - started:.0f} s through the front door")
    model = demo.registered(job)
    translation = demo.translate(model["model_id"])
    return {"framework": "TFF DP-FedAvg", "accuracy": job["rounds"][-1].get("accuracy"),
            "epsilon": job["privacy"]["epsilon"], "delta": job["privacy"]["delta"], "model_id": model["model_id"],
            "onnx_parity": translation.get("parity", {}).get("passed", False),
            "seconds_per_round": sum(per_round) / len(per_round)}
