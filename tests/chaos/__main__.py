"""`python -m tests.chaos [--seed N] [--kills K]`: see tests/chaos/__init__.py."""

from __future__ import annotations

import argparse
import sys

from tests.chaos.run import run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=16, help="fixes which component is killed and when")
    parser.add_argument("--kills", type=int, default=60, help="how many SIGKILLs (default 60)")
    parser.add_argument("--no-learner", action="store_true", help="leave the Learn stream out of the workload")
    args = parser.parse_args(argv)
    result = run(args.seed, args.kills, learner=not args.no_learner, log=lambda line: print(line, flush=True))
    print(result.table())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
