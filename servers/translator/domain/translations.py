"""The Translator's resources: a translation and its parity report. Plain data, no transport."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal


UNKNOWN_ACCURACY = -1.0


@dataclass(frozen=True)
class Parity:
    """How closely the ONNX model agrees with its source (the worker's report, condensed)."""

    max_abs_diff: float
    max_rel_diff: float
    atol: float
    rtol: float
    passed: bool
    batch_source: str = ""
    samples: int = 0
    top1_agreement: float = 0.0  # 0 when the model is not a classifier
    source_accuracy: float = UNKNOWN_ACCURACY
    onnx_accuracy: float = UNKNOWN_ACCURACY


@dataclass(frozen=True)
class Translation:
    translation_id: str
    model_id: str
    framework: str
    source_sha256: str
    converter: str
    opset: int
    size_bytes: int
    md5: str
    sha256: str
    parity: Parity
    report_json: str
    object_key: str
    contract_address: str
    contract_tx_hash: str
    create_time: dt.datetime
    # The source model's owner organization, which owns the translation ("" for translations stored
    # before it was recorded). Not on the wire: who may read a translation is whoever may read its model.
    organization_id: str = ""


@dataclass(frozen=True)
class Page:
    items: list[Translation] = field(default_factory=list)
    next_page_token: str = ""


def object_key(translation_id: str) -> str:
    return f"translations/{translation_id}"


def decimal_text(value: float) -> str:
    """A float as plain decimal text for the ledger: the shortest round-trip digits, no exponent
    (1e-05 -> "0.00001"). Non-finite values are spelled "NaN", "Infinity", "-Infinity"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = format(Decimal(repr(float(value))), "f")
    return text


def parity_from_report(report: dict) -> Parity:
    """The parity figures of a worker report (schema mlmesh.translator.report/v1)."""
    p = report.get("parity") or {}
    batch = report.get("batch") or {}
    acc = report.get("accuracy") or {}
    top1 = p.get("top1_agreement")

    def num(value, default: float) -> float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    return Parity(
        max_abs_diff=num(p.get("max_abs_diff"), math.nan),
        max_rel_diff=num(p.get("max_rel_diff"), math.nan),
        atol=num(p.get("atol"), math.nan),
        rtol=num(p.get("rtol"), math.nan),
        passed=bool(report.get("passed")) and bool(p.get("passed")),
        batch_source=str(batch.get("description") or batch.get("source") or ""),
        samples=int(batch.get("samples") or 0),
        top1_agreement=num(top1, 0.0),
        source_accuracy=num(acc.get("source"), UNKNOWN_ACCURACY),
        onnx_accuracy=num(acc.get("onnx"), UNKNOWN_ACCURACY),
    )


def converter_text(report: dict) -> str:
    """'skl2onnx.convert_sklearn (skl2onnx 1.19.1, scikit-learn 1.7.2, onnx 1.19.0, onnxruntime 1.23.1)'."""
    conv = report.get("converter")
    if isinstance(conv, str):
        return conv
    if not isinstance(conv, dict):
        return ""
    name = str(conv.get("name") or "")
    exporter = conv.get("exporter")
    versions = conv.get("versions") or {}
    parts = [name]
    if exporter:
        parts.append(f"[{exporter}]")
    if versions:
        parts.append("(" + ", ".join(f"{k} {v}" for k, v in versions.items()) + ")")
    return " ".join(p for p in parts if p)
