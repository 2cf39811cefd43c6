"""The data side of a TFF DP-FedAvg job, plain numpy (no TensorFlow): read the dataset, hold out
the server's test split, split the rest over the simulated clients by a Dirichlet draw per class
whose alpha is the seed's `imb_parameter`, keep at most `n_samples` rows per client, and commit to
each client's rows.

The dataset is a CSV with a header, numeric feature columns and an integer class column (the target
column, the seed's `target_label`), or the seed's CIFAR-10 python archive (recognised by its gzip
magic; its labels are its own), read by FedPATE's `fedpate/archive.py` (plain numpy too) so that a
client's commitment to archive rows is the same in every framework. Everything is decided by the
job's `seed`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fedpate"))
from fedpate import archive  # noqa: E402  (apps/fedpate/fedpate/archive.py: numpy only)


@dataclass(frozen=True)
class Table:
    header: list[str]
    lines: Sequence[str]  # the data rows as written in the file, without line ends
    features: np.ndarray  # float32, rows x features
    labels: np.ndarray  # int32 classes 0..K-1
    feature_columns: tuple[int, ...]
    source: str = "csv"  # or "cifar-archive"


def load(path: str | Path, target: str) -> Table:
    """The CSV at `path` with `target` as its class column, or an image archive; ValueError saying
    what is wrong."""
    if archive.is_archive(path):
        found = archive.read_cifar_archive(path)
        return Table(header=found.header, lines=found.lines, features=found.pixels.astype(np.float32),
                     labels=found.labels.astype(np.int32), feature_columns=tuple(range(found.pixels.shape[1])),
                     source="cifar-archive")
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError("the dataset needs a CSV header and at least one row")
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header = rows[0]
    if target not in header:
        raise ValueError(f"target_label {target!r} is not a column of the CSV (columns: {', '.join(header[:20])})")
    where = header.index(target)
    columns = tuple(i for i in range(len(header)) if i != where)
    if not columns:
        raise ValueError("the CSV has no feature column besides the target")
    try:
        values = np.asarray([[float(v) for v in row] for row in rows[1:]], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"every CSV value must be a number ({exc})") from None
    if values.ndim != 2 or values.shape[1] != len(header):
        raise ValueError("every CSV row needs one value per header column")
    labels = values[:, where]
    if not (np.all(labels == np.round(labels)) and labels.min() >= 0):
        raise ValueError(f"the target column {target!r} must hold class numbers 0, 1, 2, ...")
    return Table(header=header, lines=lines[1:], features=values[:, columns].astype(np.float32),
                 labels=labels.astype(np.int32), feature_columns=columns)


def holdout(rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(test rows kept by the server, rows for the clients): a seeded permutation."""
    order = np.random.default_rng(seed).permutation(rows)
    test = min(rows - 1, max(1, int(round(rows * fraction))))
    return np.sort(order[:test]), order[test:]


def dirichlet_split(rows: np.ndarray, labels: np.ndarray, clients: int, alpha: float, cap: int, seed: int
                    ) -> list[np.ndarray]:
    """`rows` over `clients`: each class's rows are cut in shares drawn from Dirichlet(alpha)
    (small alpha: a few classes per client; large alpha: close to IID), then each client keeps at
    most `cap` of its rows. A draw leaving a client without rows is drawn again."""
    if len(rows) < clients:
        raise ValueError(f"{len(rows)} training rows cannot be split over {clients} clients")
    if not alpha > 0:
        raise ValueError(f"imb_parameter (Dirichlet alpha) must be > 0, got {alpha}")
    rng = np.random.default_rng(seed + 7)
    for _ in range(100):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for label in np.unique(labels[rows]):
            members = rng.permutation(rows[labels[rows] == label])
            cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha))) * len(members)).astype(int)[:-1]
            for client, piece in enumerate(np.split(members, cuts)):
                parts[client].extend(int(r) for r in piece)
        if all(parts):
            return [np.sort(rng.permutation(np.asarray(p, dtype=np.int64))[:cap]) for p in parts]
    raise ValueError(f"a Dirichlet split with imb_parameter {alpha} left a client without data 100 times; "
                     "raise imb_parameter or lower n_clients")


def commitment(table: Table, rows: np.ndarray) -> tuple[str, int]:
    """A client's commitment to its data: SHA-256 of its rows as a CSV file (the header line, then
    each of its rows as written in the dataset, every line ending in a newline) and the row count."""
    digest = hashlib.sha256((",".join(table.header) + "\n").encode())
    for row in rows:
        digest.update((table.lines[int(row)] + "\n").encode())
    return digest.hexdigest(), int(len(rows))
