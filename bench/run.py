"""`make bench`: every benchmark, each printing ratios against a baseline from the same run."""

from __future__ import annotations

from bench import datasets


def main() -> None:
    print("== datasets: 1 GB through the front door (MLMESH_BENCH_MB to change) ==")
    print(datasets.report(datasets.run()))
    print()
    print("== ledger: contract deploys on Anvil ==")
    from bench import ledger_deploys

    ledger_deploys.main()


if __name__ == "__main__":
    main()
