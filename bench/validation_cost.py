"""CPU per request of the request-validation layer (servers/common/validation.py) on ModelInfer.

Runs in the ML environment (`.venv-ml/bin/python -m bench.validation_cost`, in `make bench`). Two
comparisons, each against a baseline measured in the same run, with `time.process_time` (CPU of
this process, so the figures hold on a loaded machine):

* `check_message` on ModelInferRequests (1 row and 64 rows of 36 FP32 in `contents`, 1 row in
  `raw_input_contents`): today's layer against the layer as it was before it was made cheaper
  (commit 01ca91e's parent, read with `git show` and loaded as a module; skipped outside a git
  checkout);
* the Learner's whole ModelInfer path without the transport (bench/learner_path.py's harness: the
  real mesh layers and servicer over a real LearnerCore) with the validation layer and without it:
  what the layer adds to a real request; and with the layer installed but its check replaced by a
  no-op, which splits that into the checks and the layer's wrapping.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.learner_path import FEATURES, Path_, _cpu_per_call, _cpu_per_request, build_live, infer_bytes

REPO = Path(__file__).resolve().parents[1]
BEFORE = "01ca91e^"  # the layer before "validation walks only fields with rules"


def _previous_layer():
    """The validation module as of BEFORE, or None when git or the commit is not at hand."""
    try:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE}:servers/common/validation.py"],
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("mlmesh_bench_validation_before", f.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _no_check(request) -> None:
    return None


def _requests():
    from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2

    return {f"1 row x {FEATURES} FP32 (contents)": v2.ModelInferRequest.FromString(infer_bytes(1, raw=False)),
            f"64 rows x {FEATURES} FP32 (contents)": v2.ModelInferRequest.FromString(infer_bytes(64, raw=False)),
            f"1 row x {FEATURES} FP32 (raw_input_contents)": v2.ModelInferRequest.FromString(infer_bytes(1, raw=True))}


async def measure(n: int = 20_000) -> dict[str, tuple[float, float | None]]:
    """{case: (µs CPU now, µs CPU of the baseline or None)}."""
    from servers.common import validation

    out: dict[str, tuple[float, float | None]] = {}
    before = _previous_layer()
    for label, request in _requests().items():
        now = _cpu_per_call(lambda r=request: validation.check_message(r), n)
        old = _cpu_per_call(lambda r=request: before.check_message(r), n) if before is not None else None
        out[f"check_message, {label}: now vs before"] = (now, old)
    infer = "/inference.GRPCInferenceService/ModelInfer"
    with tempfile.TemporaryDirectory(prefix="mlmesh-bench-validation-") as tmp:
        live = build_live(Path(tmp) / "bench-validation")
        try:
            pool = [infer_bytes(1, raw=False, seed=i) for i in range(64)]
            checked = Path_(live)
            unchecked = Path_(live, validate=False)
            for c in (1, 16):
                # alternate the two a few times so load on the box falls on both alike
                with_v, without_v, hollow = [], [], []
                for _ in range(3):
                    with_v.append(await _cpu_per_request(lambda i: checked.call(infer, pool[i % 64]), n // 3, c))
                    without_v.append(await _cpu_per_request(lambda i: unchecked.call(infer, pool[i % 64]), n // 3, c))
                    real_check = validation.check_request
                    validation.check_request = _no_check  # the layer's wrapping alone, nothing checked
                    try:
                        hollow.append(await _cpu_per_request(lambda i: checked.call(infer, pool[i % 64]), n // 3, c))
                    finally:
                        validation.check_request = real_check
                out[f"ModelInfer path, {c} in flight: with validation vs without"] = (min(with_v), min(without_v))
                out[f"ModelInfer path, {c} in flight: validation layer with its checks off vs without"] = (
                    min(hollow), min(without_v))
        finally:
            live.close()
    return out


def report(results: dict[str, tuple[float, float | None]]) -> None:
    print("validation layer, µs CPU per request (ratio: now / baseline)")
    for label, (now, base) in results.items():
        if base is None:
            print(f"  {label:<78} {now:7.2f}   (baseline unavailable)")
        else:
            print(f"  {label:<78} {now:7.2f} vs {base:7.2f}  {now / base:5.2f}x  (+{now - base:.2f} µs)")


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 20_000
    report(asyncio.run(measure(n)))


if __name__ == "__main__":
    main(sys.argv[1:])
