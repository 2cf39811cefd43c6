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


if __name__ == "__main__":
    main()
