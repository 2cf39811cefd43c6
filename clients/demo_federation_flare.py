"""The NVIDIA FLARE step of `make demo-federation` (clients/demo_federation.py calls it with its `Demo`):
FedAvg in FLARE's simulator over 2 clients on scikit-learn's digits, through the front door, ending
with the global model registered with its provenance and translated to ONNX. No privacy filter: the
job's privacy report says it gives no formal guarantee (docs/federation.md: the SVT filter's epsilon,
and what it does to accuracy with FLARE's default clipping)."""

from __future__ import annotations

import time


def flare(demo, dataset_id: str) -> dict:
    """FLARE FedAvg: 2 simulated clients, 3 rounds of 2 local epochs, the MLP.
    `demo` is clients.demo_federation.Demo (console, say, run_job, registered, translate)."""
    rounds = 3
    demo.say(f"NVIDIA FLARE FedAvg: digits over 2 simulated clients, {rounds} rounds, no privacy filter")
    body = {"display_name": "demo flare digits",
            "data": {"dataset_id": dataset_id, "target_column": "label", "server_fraction": 0.3, "seed": 0},
            "flare": {"epochs": 2, "batch_size": 32, "num_clients": 2, "num_rounds": rounds,
                      "privacy_filter": "PRIVACY_FILTER_NONE"}}
    started = time.monotonic()
    job = demo.run_job(body)
    per_round = [float(r.get("seconds", 0)) for r in job["rounds"]]
    demo.console.print(f"  {sum(per_round) / len(per_round):.2f} s per round on average; the whole job "
                       f"{time.monotonic() - started:.0f} s through the front door")
    model = demo.registered(job)
    translation = demo.translate(model["model_id"])
    return {"framework": "NVIDIA FLARE FedAvg", "accuracy": job["rounds"][-1].get("accuracy"),
            "epsilon": float(job["privacy"].get("epsilon", "inf")), "delta": float(job["privacy"].get("delta", 0.0)),
            "formal_guarantee": job["privacy"].get("formal_guarantee", False), "model_id": model["model_id"],
            "onnx_parity": translation.get("parity", {}).get("passed", False),
            "seconds_per_round": sum(per_round) / len(per_round)}
