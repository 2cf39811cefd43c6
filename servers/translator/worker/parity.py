"""Source framework vs onnxruntime on the same batch: differences, top-1 agreement, accuracy."""

from __future__ import annotations

import numpy as np

from .converters import Prediction

# The tolerances of PyTorch's own ONNX export tutorial (np.testing.assert_allclose(rtol=1e-3, atol=1e-5)).
# Both sides compute in float32 (machine epsilon 1.2e-7) with different kernels (oneDNN / MKL / Eigen vs
# onnxruntime's MLAS) that sum dot products in different orders, so outputs of order 1 differ by 1e-7..1e-6;
# scikit-learn computes in float64 and its ONNX graph in float32, which costs about the same. The bound
# leaves 10-100x headroom for that and still fails a wrong operator, layout or weight (differences >= 1e-2).
ATOL = 1e-5
RTOL = 1e-3
RULE = "every element: |onnx - source| <= atol + rtol * |source| (numpy.allclose)"
RATIONALE = (
    "float32 rounding with different summation orders (framework kernels vs onnxruntime MLAS) gives "
    "differences of 1e-7..1e-6 on outputs of order 1; atol=1e-5, rtol=1e-3 (PyTorch's ONNX export "
    "tutorial) leave 10-100x headroom and still catch a wrong operator or weight (>= 1e-2)"
)


def compare(source: Prediction, onnx: Prediction, atol: float = ATOL, rtol: float = RTOL) -> dict:
    """Differences output by output; max relative difference over elements with |source| > atol."""
    outputs = []
    passed = True
    max_abs = 0.0
    max_rel = 0.0
    if len(source.values) != len(onnx.values):
        passed = False
    for (name, src), (onnx_name, onx) in zip(source.values, onnx.values):
        entry = {"name": name, "onnx_name": onnx_name, "shape": list(src.shape), "onnx_shape": list(onx.shape)}
        if src.shape != onx.shape:
            entry.update(passed=False, reason="shapes differ")
            passed = False
            outputs.append(entry)
            continue
        s = src.astype(np.float64)
        o = onx.astype(np.float64)
        diff = np.abs(o - s)
        big = np.abs(s) > atol
        out_abs = float(diff.max()) if diff.size else 0.0
        out_rel = float((diff[big] / np.abs(s[big])).max()) if big.any() else 0.0
        ok = bool(np.allclose(o, s, rtol=rtol, atol=atol))
        entry.update(max_abs_diff=out_abs, max_rel_diff=out_rel, passed=ok)
        outputs.append(entry)
        max_abs = max(max_abs, out_abs)
        max_rel = max(max_rel, out_rel)
        passed = passed and ok
    report = {
        "max_abs_diff": max_abs,
        "max_rel_diff": max_rel,
        "max_rel_diff_over": f"elements with |source| > atol ({atol:g})",
        "atol": atol,
        "rtol": rtol,
        "rule": RULE,
        "tolerance_rationale": RATIONALE,
        "outputs": outputs,
        "classification": source.labels is not None,
    }
    if source.labels is not None and onnx.labels is not None:
        agree = _normalize(source.labels) == _normalize(onnx.labels)
        report["top1_agreement"] = float(np.mean(agree))
        report["top1_disagreements"] = int(np.size(agree) - np.count_nonzero(agree))
        if not source.values:  # a classifier without probabilities: the labels are the output
            passed = passed and bool(agree.all())
    else:
        report["top1_agreement"] = None
    report["passed"] = passed
    return report


def _normalize(labels) -> np.ndarray:
    """Labels as comparable strings: 3, 3.0, "3" and np.int64(3) are the same class."""
    out = []
    for v in np.asarray(labels).ravel().tolist():
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        try:
            f = float(v)
            out.append(str(int(f)) if f.is_integer() else repr(f))
        except (TypeError, ValueError):
            out.append(str(v).strip())
    return np.asarray(out, dtype=object)


def accuracy(predicted, truth: list[str]) -> float:
    return float(np.mean(_normalize(predicted) == _normalize(truth)))
