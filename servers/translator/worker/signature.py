"""The trained model's input signature, as the recipe declared it (``[recipe.input]`` in recipe.toml)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass


class WorkerError(Exception):
    """A request the worker cannot serve; the message is shown to the user (exit code 2)."""


DTYPES = ("float32", "float64", "int64", "int32")


@dataclass(frozen=True)
class Signature:
    shape: tuple[int | None, ...]  # None = any size; axis 0 is the batch axis
    dtype: str
    csv_feature_columns: tuple[int, int] | None  # half-open column range of a CSV dataset
    scale: float
    csv_label_column: int | None  # None = the column right after the features (if it exists)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.shape[1:])

    @property
    def feature_count(self) -> int:
        return math.prod(self.feature_shape)

    def as_json(self) -> dict:
        return {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "csv_feature_columns": list(self.csv_feature_columns) if self.csv_feature_columns else None,
            "scale": self.scale,
        }


def parse_signature(text: str) -> Signature:
    """Parses and validates the signature JSON; -1 and null both mean "any size"."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkerError(f"invalid signature: not JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise WorkerError("invalid signature: expected a JSON object")
    shape_raw = raw.get("shape")
    if not isinstance(shape_raw, list) or len(shape_raw) < 2:
        raise WorkerError("invalid signature: 'shape' must be a list of at least 2 dimensions (batch first)")
    shape: list[int | None] = []
    for i, dim in enumerate(shape_raw):
        if dim is None or dim == -1:
            if i > 0:
                raise WorkerError(f"invalid signature: only the batch axis may be dynamic (axis {i} is {dim})")
            shape.append(None)
        elif isinstance(dim, int) and not isinstance(dim, bool) and dim > 0:
            shape.append(None if i == 0 else dim)
        else:
            raise WorkerError(f"invalid signature: dimension {i} is {dim!r}")
    dtype = raw.get("dtype", "float32")
    if dtype not in DTYPES:
        raise WorkerError(f"invalid signature: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    columns = raw.get("csv_feature_columns")
    feature_count = math.prod(int(d) for d in shape[1:])
    cols: tuple[int, int] | None = None
    if columns is not None:
        if (
            not isinstance(columns, list)
            or len(columns) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in columns)
            or not 0 <= columns[0] < columns[1]
        ):
            raise WorkerError("invalid signature: 'csv_feature_columns' must be [start, stop] with 0 <= start < stop")
        if columns[1] - columns[0] != feature_count:
            raise WorkerError(
                f"invalid signature: csv_feature_columns {columns} hold {columns[1] - columns[0]} values "
                f"but shape {list(shape)} needs {feature_count} per sample"
            )
        cols = (columns[0], columns[1])
    scale = raw.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale):
        raise WorkerError(f"invalid signature: 'scale' must be a finite number, got {scale!r}")
    label = raw.get("csv_label_column")
    if label is not None and (not isinstance(label, int) or isinstance(label, bool) or label < 0):
        raise WorkerError(f"invalid signature: 'csv_label_column' must be a column index, got {label!r}")
    return Signature(tuple(shape), dtype, cols, float(scale), label)
