"""Writes scikit-learn's bundled 8x8 handwritten digits as a CSV dataset (nothing is downloaded).

    .venv-ml/bin/python examples/make_digits_csv.py --out /tmp/digits.csv

Columns: ``p0`` .. ``p63`` (pixel intensities 0..16, row-major) then ``label`` (0..9); a header row.
The 1797 rows are shuffled with a fixed seed, so the demo recipes can hold out the last rows as their
test set (``test_fraction``, default 0.2: rows 1437..1796) and anyone can re-run them on exactly those rows.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np
from sklearn.datasets import load_digits


def write_digits_csv(path: str, seed: int = 0) -> int:
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"p{i}" for i in range(64)] + ["label"])
        for i in order:
            writer.writerow([int(v) for v in digits.data[i]] + [int(digits.target[i])])
    return len(order)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="digits.csv", help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the row shuffle")
    args = parser.parse_args()
    rows = write_digits_csv(args.out, args.seed)
    print(f"wrote {rows} rows (64 pixel columns + label) to {args.out}")


if __name__ == "__main__":
    main()
