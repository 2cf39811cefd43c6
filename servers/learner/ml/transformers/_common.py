"""What the transformers share: parameter checks (unknown keys fail, naming the key), target and row
checks of an observation, classification outputs, and reading the reference CSV."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.base import CLASSIFICATION, TASKS, Obs, Output


def check_keys(name: str, params: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidArgument(f"transformer_params: unknown key(s) {', '.join(unknown)} for the {name!r} "
                              f"transformer; it takes {', '.join(known)}")


def int_param(params: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    value = params.get(key, default)
    if value is None:
        raise InvalidArgument(f"transformer_params.{key} is required (an integer in {low}..{high})")
    # JSON (google.protobuf.Struct) numbers arrive as floats: 36.0 is 36
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise InvalidArgument(f"transformer_params.{key} must be an integer in {low}..{high}, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise InvalidArgument(f"transformer_params.{key} must be an integer in {low}..{high}, got {value}")
    return value


def float_param(params: dict[str, Any], key: str) -> float:
    value = params.get(key)
    if value is None:
        raise InvalidArgument(f"transformer_params.{key} is required (a number)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"transformer_params.{key} must be a finite number, got {value!r}")
    return float(value)


def names_param(params: dict[str, Any], key: str, minimum: int) -> list[str] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidArgument(f"transformer_params.{key} must be a list of non-empty strings, got {value!r}")
    if len(value) < minimum:
        raise InvalidArgument(f"transformer_params.{key} needs at least {minimum} names, got {len(value)}")
    duplicates = sorted({v for v in value if list(value).count(v) > 1})
    if duplicates:
        raise InvalidArgument(f"transformer_params.{key} names must be unique; repeated: {', '.join(duplicates)}")
    return list(value)


def check_task(name: str, task: str, allowed: tuple[str, ...] = TASKS) -> None:
    if task not in allowed:
        raise InvalidArgument(f"task must be {' or '.join(allowed)} for the {name!r} transformer, got {task!r}")


def checked_target(obs: Obs, index: int, task: str, n_classes: int | None) -> float:
    """The observation's target, checked: a finite number, a class index in range for classification."""
    t = obs.target
    if t is None:
        raise InvalidArgument(f"observation {index}: the target is missing; learning needs one")
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not math.isfinite(t):
        raise InvalidArgument(f"observation {index}: the target must be a finite number, got {t!r}")
    if task == CLASSIFICATION and (not float(t).is_integer() or not 0 <= t < n_classes):
        raise InvalidArgument(f"observation {index}: the target must be a class index in 0..{n_classes - 1}, "
                              f"got {t!r}")
    return float(t)


def checked_row(obs: Obs, index: int, names: list[str], kind: str) -> np.ndarray:
    """The observation's row, checked: length and finite values."""
    if obs.row is None:
        got = "a sensor reading" if obs.reading is not None else "an image" if obs.image is not None else "nothing"
        raise InvalidArgument(f"observation {index}: this learner takes {kind}, got {got}")
    row = np.asarray(obs.row, dtype=np.float64).reshape(-1)
    if len(row) != len(names):
        raise InvalidArgument(f"observation {index}: the row has {len(row)} values, expected {len(names)} "
                              f"({names[0]} .. {names[-1]})")
    if np.isfinite(row).all():
        return row
    bad = np.flatnonzero(~np.isfinite(row))
    if len(bad):
        raise InvalidArgument(f"observation {index}: feature {names[bad[0]]!r} is {row[bad[0]]}, "
                              "expected a finite number")
    return row


def no_sensor(name: str, sensor_id: str) -> None:
    if sensor_id:
        raise InvalidArgument(f"sensor_id applies to power-forecast learners only; this one is {name!r}: "
                              "send inputs instead")


def classification_outputs(predictions: np.ndarray, labels: list[str]) -> list[Output]:
    out = []
    for probs in np.asarray(predictions, dtype=np.float64).reshape(len(predictions), -1):
        k = int(np.argmax(probs))
        out.append(Output(values=[float(p) for p in probs], class_index=k, label=labels[k] if labels else ""))
    return out


def read_csv(csv_path: Path):
    """The reference dataset as a pandas DataFrame of strings (header names stripped)."""
    import pandas as pd

    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise FailedPrecondition("the reference dataset is empty; it needs a header row and data rows") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise FailedPrecondition(f"the reference dataset cannot be read as CSV: {e}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def numeric_columns(df, columns: list[str]) -> np.ndarray:
    """The named columns as float64 (n, len(columns)); cells that are not numbers become NaN."""
    import pandas as pd

    if not columns:
        return np.empty((len(df), 0))
    return np.stack([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64) for c in columns], axis=1)


def finite_recent(rows: np.ndarray, max_rows: int) -> np.ndarray:
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    return rows[-max_rows:] if max_rows > 0 else rows[:0]
