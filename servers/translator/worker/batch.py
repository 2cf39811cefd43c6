"""The batch a parity check runs on: rows of the registered dataset, or synthetic inputs.

A CSV dataset is streamed with the standard ``csv`` module and only the requested rows are kept, so a
dataset of any size costs memory for the batch alone. Rows are counted from 0 after an optional header
(a header is a first line whose feature cells are not all numbers). Features are columns
``csv_feature_columns[0] .. csv_feature_columns[1]-1`` multiplied by ``scale`` and reshaped to the
signature's shape; labels come from ``csv_label_column`` when the signature names one, else from the
column right after the features, when the CSV has it.

When there is no dataset, or it is not a CSV with those numeric columns, the batch is drawn from a
seeded standard normal distribution, and the report says so.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np

from .signature import Signature, WorkerError

SNIFF_BYTES = 64 * 1024


@dataclass
class Batch:
    x: np.ndarray
    source: str  # "dataset" | "synthetic"
    description: str
    rows: tuple[int, int] | None = None
    labels: list[str] | None = None
    label_column: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "source": self.source,
            "description": self.description,
            "rows": list(self.rows) if self.rows else None,
            "samples": int(self.x.shape[0]),
            "shape": list(self.x.shape),
            "dtype": str(self.x.dtype),
            "label_column": self.label_column,
            "notes": self.notes,
        }


def parse_rows(text: str) -> tuple[int, int | None]:
    """``START:STOP`` (half-open); STOP may be empty (to the end); negative values count from the end."""
    start_s, sep, stop_s = text.partition(":")
    try:
        start = int(start_s) if start_s.strip() else 0
        stop = int(stop_s) if sep and stop_s.strip() else None
    except ValueError:
        raise WorkerError(f"invalid --rows {text!r}: expected START:STOP") from None
    if not sep:
        raise WorkerError(f"invalid --rows {text!r}: expected START:STOP")
    return start, stop


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _not_csv_reason(path: str, sig: Signature) -> str | None:
    """Why the file cannot be read as a CSV with the signature's feature columns (None = it can)."""
    if sig.csv_feature_columns is None:
        return "the signature names no csv_feature_columns"
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        return f"the dataset cannot be read ({exc.strerror})"
    if not head:
        return "the dataset is empty"
    if b"\x00" in head:
        return "the dataset is binary, not CSV"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a cut multi-byte character at the very end is fine
            return "the dataset is not UTF-8 text"
        text = head[: exc.start].decode("utf-8")
    lines = [line for line in text.splitlines()[:3] if line.strip()]
    if not lines:
        return "the dataset has no rows"
    stop = sig.csv_feature_columns[1]
    for row in csv.reader(lines[:2]):
        if len(row) < stop:
            return f"its first rows have {len(row)} columns, fewer than the {stop} the features need"
    return None


def _iter_rows(path: str, sig: Signature):
    """Yields (row_index, cells) of the data rows, after an optional header."""
    start_col, stop_col = sig.csv_feature_columns
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        index = 0
        for line_no, cells in enumerate(csv.reader(f)):
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if line_no == 0 and not all(_is_number(c) for c in cells[start_col:stop_col]):
                continue  # header
            yield index, cells
            index += 1


def _count_rows(path: str, sig: Signature) -> int:
    count = 0
    for count, _ in enumerate(_iter_rows(path, sig), start=1):
        pass
    return count


def from_dataset(path: str, sig: Signature, start: int, stop: int | None) -> Batch:
    """Reads rows [start, stop) of a CSV dataset; raises WorkerError when a row does not fit the signature."""
    start_col, stop_col = sig.csv_feature_columns
    if start < 0 or (stop is not None and stop < 0):
        total = _count_rows(path, sig)
        start = max(total + start, 0) if start < 0 else start
        stop = max(total + stop, 0) if stop is not None and stop < 0 else stop
    label_col = sig.csv_label_column if sig.csv_label_column is not None else stop_col
    features: list[list[float]] = []
    labels: list[str] = []
    has_labels = True
    first = last = None
    for index, cells in _iter_rows(path, sig):
        if index < start:
            continue
        if stop is not None and index >= stop:
            break
        if len(cells) < stop_col:
            raise WorkerError(f"dataset row {index} has {len(cells)} columns; the features need {stop_col}")
        try:
            features.append([float(c) for c in cells[start_col:stop_col]])
        except ValueError:
            raise WorkerError(
                f"dataset row {index}: columns {start_col}..{stop_col - 1} are not all numbers"
            ) from None
        if has_labels and label_col < len(cells) and cells[label_col].strip():
            labels.append(cells[label_col].strip())
        else:
            has_labels = False
        first = index if first is None else first
        last = index
    if not features:
        raise WorkerError(f"the dataset has no rows in {start}:{'' if stop is None else stop}")
    x = (np.asarray(features, dtype=np.float64) * sig.scale).astype(sig.dtype)
    x = x.reshape((len(features), *sig.feature_shape))
    scale = "" if sig.scale == 1.0 else f", multiplied by {sig.scale:g}"
    return Batch(
        x=x,
        source="dataset",
        description=f"dataset rows {first}..{last} (CSV columns {start_col}..{stop_col - 1}{scale})",
        rows=(first, last + 1),
        labels=labels if has_labels else None,
        label_column=label_col if has_labels else None,
    )


def synthetic(sig: Signature, samples: int, seed: int, why: str) -> Batch:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, *sig.feature_shape))
    if sig.dtype.startswith("int"):
        x = np.rint(x)
    x = x.astype(sig.dtype)
    return Batch(
        x=x,
        source="synthetic",
        description=f"synthetic normal inputs ({samples} samples, seed {seed}): {why}",
        notes=[f"not drawn from the dataset: {why}"],
    )


def make_batch(
    dataset: str | None,
    sig: Signature,
    rows: tuple[int, int | None],
    seed: int,
    samples: int = 256,
    min_samples: int = 1,
) -> Batch:
    """The dataset's rows when it is a CSV that fits the signature, else ``samples`` synthetic normal inputs."""
    start, stop = rows
    n_synthetic = max(samples, min_samples)
    if dataset is None:
        return synthetic(sig, n_synthetic, seed, "no dataset was given")
    reason = _not_csv_reason(dataset, sig)
    if reason is not None:
        return synthetic(sig, n_synthetic, seed, f"the dataset is not a CSV with the feature columns ({reason})")
    batch = from_dataset(dataset, sig, start, stop)
    if batch.x.shape[0] < min_samples:
        return synthetic(
            sig, n_synthetic, seed,
            f"the dataset rows {start}:{'' if stop is None else stop} hold {batch.x.shape[0]} sample(s), "
            f"fewer than the {min_samples} needed",
        )
    return batch
