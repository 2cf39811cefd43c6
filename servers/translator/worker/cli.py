"""Command line: convert a model (default), check an ONNX file (``--onnx-check``) or measure how far two
models' outputs differ (``--compare OTHER``); see the package doc."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback

from .signature import WorkerError

PROG = "translator-worker"
REPORT_SCHEMA = "mlmesh.translator.report/v1"
DEFAULT_OPSET = 18  # onnxruntime >= 1.14 runs it; the TorchScript exporter goes up to 20, skl2onnx further
EXPORT_BATCH = 2  # the example batch torch.onnx.export traces with: >= 2 so nothing pins the batch axis to 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m servers.translator.worker", description=__doc__)
    p.add_argument("--framework", help="pytorch | sklearn | tensorflow (ignored with --onnx-check)")
    p.add_argument("--model", required=True, help="the trained artifact (with --onnx-check: the .onnx file)")
    p.add_argument("--signature", required=True, help='input signature JSON: {"shape": [null, …], "dtype": …}')
    p.add_argument("--dataset", help="the registered dataset file the parity batch is drawn from")
    p.add_argument("--out", help="where to write the .onnx file (required unless --onnx-check)")
    p.add_argument("--report", help="where to write the JSON report (default: stdout)")
    p.add_argument("--rows", default="0:256", help="dataset rows START:STOP, half-open, negatives from the end")
    p.add_argument("--samples", type=int, default=256, help="synthetic batch size when the dataset is not CSV")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic batch")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX default-domain opset")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 1e-5)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 1e-3)")
    p.add_argument("--onnx-check", action="store_true", help="run --model (an .onnx) in onnxruntime on the batch")
    p.add_argument("--compare", metavar="OTHER",
                   help="run --model and OTHER (same framework) on the batch and report how far their outputs differ")
    return p


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: str | None, doc: dict) -> None:
    text = json.dumps(doc, indent=2, sort_keys=False)
    if path is None:
        sys.stdout.write(text + "\n")
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def _onnx_session(path: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail / InvalidGraph / …
        from .converters import _first_line

        raise WorkerError(f"onnxruntime cannot load the ONNX model: {_first_line(exc)}") from None


def _run_onnx(session, x):
    feed_name = session.get_inputs()[0].name
    outs = session.run(None, {feed_name: x})
    return [(o.name, v) for o, v in zip(session.get_outputs(), outs)]


def _onnx_description(path: str, session) -> dict:
    import onnx

    model = onnx.load(path, load_external_data=False)
    external = [
        t.name
        for t in model.graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    return {
        "path": os.path.abspath(path),
        "sha256": _sha256(path),
        "size_bytes": os.path.getsize(path),
        "opset": opsets.get("ai.onnx"),
        "opsets": opsets,
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "external_data": bool(external),
        "inputs": [{"name": i.name, "shape": i.shape, "type": i.type} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "shape": o.shape, "type": o.type} for o in session.get_outputs()],
    }


def _batch(args, sig, min_samples: int):
    from .batch import make_batch, parse_rows

    return make_batch(
        args.dataset, sig, parse_rows(args.rows), args.seed, samples=args.samples, min_samples=min_samples
    )


def _accuracy_block(batch, source_labels, onnx_labels) -> dict | None:
    from .parity import accuracy

    if batch.labels is None or onnx_labels is None:
        return None
    block = {
        "label_column": batch.label_column,
        "rows": list(batch.rows) if batch.rows else None,
        "samples": len(batch.labels),
        "onnx": accuracy(onnx_labels, batch.labels),
    }
    if source_labels is not None:
        block["source"] = accuracy(source_labels, batch.labels)
        block["difference_pp"] = round(100 * (block["onnx"] - block["source"]), 4)
    return block


def convert(args, sig) -> dict:
    from .converters import converter_for
    from .parity import ATOL, RTOL, compare

    conv = converter_for(args.framework)
    if not args.out:
        raise WorkerError("--out is required to convert a model")
    if not os.path.isfile(args.model):
        raise WorkerError(f"the model file {args.model} does not exist")
    started = time.monotonic()
    batch = _batch(args, sig, min_samples=EXPORT_BATCH)
    model = conv.load(args.model)
    source = conv.predict(model, batch.x)

    # Convert into a private directory, then move the single file into place: any stray file a
    # converter writes (external data) is seen, and a failed conversion leaves nothing at --out.
    out_dir = os.path.dirname(os.path.abspath(args.out))
    with tempfile.TemporaryDirectory(prefix=".translate-", dir=out_dir) as work:
        tmp_out = os.path.join(work, "model.onnx")
        converter_info = conv.convert(model, sig, batch.x[:EXPORT_BATCH], tmp_out, args.opset)
        extra = sorted(set(os.listdir(work)) - {"model.onnx"})
        if not os.path.isfile(tmp_out):
            raise WorkerError(f"{conv.converter} wrote no ONNX file")
        if extra:
            raise WorkerError(f"{conv.converter} wrote external data files ({', '.join(extra)}): not self-contained")
        session = _onnx_session(tmp_out)
        onnx_out = conv.onnx_prediction(_run_onnx(session, batch.x))
        single = conv.onnx_prediction(_run_onnx(session, batch.x[:1]))  # the batch axis is dynamic
        description = _onnx_description(tmp_out, session)
        os.replace(tmp_out, args.out)
    description["path"] = os.path.abspath(args.out)

    atol = ATOL if args.atol is None else args.atol
    rtol = RTOL if args.rtol is None else args.rtol
    parity = compare(source, onnx_out, atol=atol, rtol=rtol)
    return {
        "schema": REPORT_SCHEMA,
        "ok": True,
        "mode": "convert",
        "framework": conv.framework,
        "source": {"path": os.path.abspath(args.model), "sha256": _sha256(args.model)},
        "converter": converter_info,
        "onnx": description,
        "opset": description["opset"],
        "input": {"shape": list(sig.shape), "dtype": sig.dtype},
        "signature": sig.as_json(),
        "export_batch_size": EXPORT_BATCH,
        "batch": batch.as_json(),
        "batch_sizes_run": [int(batch.x.shape[0]), 1],
        "single_sample_output_shapes": [list(v.shape) for _, v in single.values],
        "parity": parity,
        "passed": parity["passed"],
        "accuracy": _accuracy_block(batch, source.labels, onnx_out.labels),
        "duration_seconds": round(time.monotonic() - started, 3),
    }


def onnx_check(args, sig) -> dict:
    from .converters import Prediction, _argmax_labels

    if not os.path.isfile(args.model):
        raise WorkerError(f"the ONNX file {args.model} does not exist")
    started = time.monotonic()
    batch = _batch(args, sig, min_samples=1)
    session = _onnx_session(args.model)
    try:
        outputs = _run_onnx(session, batch.x)
    except Exception as exc:  # noqa: BLE001
        from .converters import _first_line

        raise WorkerError(f"onnxruntime cannot run the model on the batch: {_first_line(exc)}") from None
    named = dict(outputs)
    labels = named["label"] if "label" in named else _argmax_labels(outputs[0][1])
    prediction = Prediction(values=outputs, labels=labels)
    return {
        "schema": REPORT_SCHEMA,
        "ok": True,
        "mode": "onnx-check",
        "onnx": _onnx_description(args.model, session),
        "input": {"shape": list(sig.shape), "dtype": sig.dtype},
        "batch": batch.as_json(),
        "output_shapes": {name: list(v.shape) for name, v in prediction.values},
        "accuracy": _accuracy_block(batch, None, prediction.labels),
        "duration_seconds": round(time.monotonic() - started, 3),
    }


def compare_models(args, sig) -> dict:
    """Two models of one framework on the same batch (a reproduction against the original): the
    largest output difference, measured; the bytes' identity is reported beside it, never assumed."""
    from .converters import converter_for
    from .parity import compare

    conv = converter_for(args.framework)
    for path in (args.model, args.compare):
        if not os.path.isfile(path):
            raise WorkerError(f"the model file {path} does not exist")
    started = time.monotonic()
    batch = _batch(args, sig, min_samples=1)
    first = conv.predict(conv.load(args.model), batch.x)
    second = conv.predict(conv.load(args.compare), batch.x)
    differences = compare(first, second, atol=0.0 if args.atol is None else args.atol,
                          rtol=0.0 if args.rtol is None else args.rtol)
    first_sha, second_sha = _sha256(args.model), _sha256(args.compare)
    return {
        "schema": REPORT_SCHEMA,
        "ok": True,
        "mode": "compare",
        "framework": conv.framework,
        "model": {"path": os.path.abspath(args.model), "sha256": first_sha},
        "other": {"path": os.path.abspath(args.compare), "sha256": second_sha},
        "bytes_identical": first_sha == second_sha,
        "batch": batch.as_json(),
        "differences": differences,
        "max_abs_diff": differences["max_abs_diff"],
        "duration_seconds": round(time.monotonic() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from .signature import parse_signature

        sig = parse_signature(args.signature)
        if not args.onnx_check and not args.framework:
            raise WorkerError("--framework is required to convert or compare models")
        if args.onnx_check:
            report = onnx_check(args, sig)
        elif args.compare:
            report = compare_models(args, sig)
        else:
            report = convert(args, sig)
    except WorkerError as exc:
        _fail(args, str(exc), "FAILED_PRECONDITION")
        return 2
    except Exception as exc:  # noqa: BLE001 - anything else is our bug: say so, keep the trace on stderr
        traceback.print_exc(file=sys.stderr)
        _fail(args, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0], "INTERNAL")
        return 1
    _write_json(args.report, report)
    return 0


def _fail(args, message: str, kind: str) -> None:
    if args.report:
        try:
            _write_json(args.report, {"schema": REPORT_SCHEMA, "ok": False, "error": {"kind": kind, "message": message}})
        except OSError:
            pass
    sys.stderr.flush()
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
