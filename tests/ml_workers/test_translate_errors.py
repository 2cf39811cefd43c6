"""Requests the worker cannot serve exit with code 2 and one clear line on stderr."""

from __future__ import annotations

import pickle
import subprocess

import pytest

from tests.ml_workers.conftest import REPO, ml_env

ERROR_PREFIX = "translator-worker: error: "
IMAGE_SIGNATURE = '{"shape": [null, 1, 8, 8], "dtype": "float32", "csv_feature_columns": [0, 64], "scale": 0.0625}'
TABLE_SIGNATURE = '{"shape": [null, 64], "dtype": "float32", "csv_feature_columns": [0, 64], "scale": 0.0625}'

# A TorchScript model whose operator (a symmetric eigendecomposition) the ONNX exporter rejects.
EIGH_MODEL = """
import sys
import torch

class Eigenvalues(torch.nn.Module):
    def forward(self, x):
        m = x.reshape(-1, 8, 8)
        return torch.linalg.eigh(m @ m.transpose(-1, -2))[0]

torch.jit.save(torch.jit.script(Eigenvalues()), sys.argv[1])
"""


def assert_refused(run, out, *fragments):
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    assert run.error_line.startswith(ERROR_PREFIX), run.stderr[-3000:]
    for fragment in fragments:
        assert fragment in run.error_line
    assert run.report == {
        "schema": "mlmesh.translator.report/v1",
        "ok": False,
        "error": {"kind": "FAILED_PRECONDITION", "message": run.error_line.removeprefix(ERROR_PREFIX)},
    }
    assert not out.exists()
    assert "Traceback" not in run.stderr


def test_unknown_framework(run_worker, tmp_path):
    model = tmp_path / "model.bin"
    model.write_bytes(b"anything")

    run = run_worker(
        "--framework", "caffe", "--model", model, "--signature", IMAGE_SIGNATURE, "--out", tmp_path / "m.onnx",
        report=tmp_path / "r.json",
    )

    assert_refused(run, tmp_path / "m.onnx", "unknown framework 'caffe'", "pytorch, sklearn, tensorflow")


@pytest.mark.parametrize(
    ("framework", "signature", "reason"),
    [
        ("pytorch", IMAGE_SIGNATURE, "not a TorchScript archive"),
        ("sklearn", TABLE_SIGNATURE, "not a pickled scikit-learn model"),
        ("tensorflow", '{"shape": [null, 8, 8, 1]}', "not a Keras model"),
    ],
)
def test_corrupt_model_file(run_worker, tmp_path, framework, signature, reason):
    model = tmp_path / "model.bin"
    model.write_bytes(bytes(range(7, 250)) * 40)

    run = run_worker(
        "--framework", framework, "--model", model, "--signature", signature, "--out", tmp_path / "m.onnx",
        report=tmp_path / "r.json",
    )

    assert_refused(run, tmp_path / "m.onnx", reason)


def test_pytorch_model_with_an_operator_onnx_lacks(ml_python, run_worker, digits_csv, tmp_path):
    model = tmp_path / "eigh.pt"
    script = tmp_path / "make_eigh.py"
    script.write_text(EIGH_MODEL)
    subprocess.run([ml_python, script, model], check=True, capture_output=True, env=ml_env(), cwd=REPO)

    run = run_worker(
        "--framework", "pytorch", "--model", model, "--signature", IMAGE_SIGNATURE, "--dataset", digits_csv,
        "--out", tmp_path / "m.onnx", report=tmp_path / "r.json",
    )

    assert_refused(run, tmp_path / "m.onnx", "torch.onnx.export cannot convert this model", "linalg_eigh")


def test_pickle_of_something_that_is_not_an_estimator(run_worker, tmp_path):
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"weights": [0.5, 1.5]}))

    run = run_worker(
        "--framework", "sklearn", "--model", model, "--signature", TABLE_SIGNATURE, "--out", tmp_path / "m.onnx",
        report=tmp_path / "r.json",
    )

    assert_refused(run, tmp_path / "m.onnx", "builtins.dict, not a scikit-learn estimator")


def test_signature_that_does_not_fit_the_model(trained, run_worker, digits_csv, tmp_path):
    model = trained("digits-cnn")

    run = run_worker(
        "--framework", "pytorch", "--model", model.model, "--signature", TABLE_SIGNATURE, "--dataset", digits_csv,
        "--out", tmp_path / "m.onnx", report=tmp_path / "r.json",
    )

    assert_refused(run, tmp_path / "m.onnx", "does not run on inputs of shape [256, 64]")


def test_inconsistent_signature(run_worker, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"x")

    run = run_worker(
        "--framework", "pytorch", "--model", model, "--out", tmp_path / "m.onnx",
        "--signature", '{"shape": [null, 1, 8, 8], "csv_feature_columns": [0, 63]}', report=tmp_path / "r.json",
    )

    assert_refused(run, tmp_path / "m.onnx", "invalid signature", "hold 63 values")
