"""The worker's --compare mode (what a reproduction runs): two models' outputs on the dataset's rows."""

from __future__ import annotations

import math

import pytest

from tests.ml_workers.conftest import TEST_PARAMS, train


@pytest.fixture(scope="module")
def cnn_twice(ml_python, digits_csv, tmp_path_factory):
    """The CNN recipe trained twice with the same seed and one epoch (TorchScript archives differ run to run)."""
    params = dict(TEST_PARAMS["digits-cnn"], epochs=1)
    return [train(ml_python, "digits-cnn", digits_csv, tmp_path_factory.mktemp(f"cnn{i}"), params) for i in (1, 2)]


def test_same_file_compares_identical(trained, run_worker, digits_csv, tmp_path):
    model = trained("digits-logreg")

    run = run_worker("--framework", "sklearn", "--model", model.model, "--compare", model.model,
                     "--signature", model.signature, "--dataset", digits_csv, "--rows=0:", report=tmp_path / "r.json")

    assert run.returncode == 0, run.stderr[-3000:]
    report = run.report
    assert report["mode"] == "compare" and report["bytes_identical"] is True
    assert report["max_abs_diff"] == 0.0
    assert report["batch"]["samples"] == 1797  # every row of the dataset


def test_two_cnn_runs_report_a_measured_difference(cnn_twice, run_worker, digits_csv, tmp_path):
    first, second = cnn_twice

    run = run_worker("--framework", "pytorch", "--model", first.model, "--compare", second.model,
                     "--signature", first.signature, "--dataset", digits_csv, "--rows=0:", report=tmp_path / "r.json")

    assert run.returncode == 0, run.stderr[-3000:]
    report = run.report
    assert report["bytes_identical"] is False
    assert report["model"]["sha256"] != report["other"]["sha256"]
    assert math.isfinite(report["max_abs_diff"])  # measured, whatever it is: the archives differ, the outputs may not
    assert report["max_abs_diff"] == report["differences"]["max_abs_diff"]
    assert report["differences"]["top1_agreement"] is not None


def test_a_different_model_is_a_nonzero_difference(trained, cnn_twice, run_worker, digits_csv, tmp_path):
    three_epochs, one_epoch = trained("digits-cnn"), cnn_twice[0]

    run = run_worker("--framework", "pytorch", "--model", three_epochs.model, "--compare", one_epoch.model,
                     "--signature", one_epoch.signature, "--dataset", digits_csv, "--rows=0:",
                     report=tmp_path / "r.json")

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.report["max_abs_diff"] > 1e-3


def test_a_missing_other_model_is_a_clear_error(trained, run_worker, digits_csv, tmp_path):
    model = trained("digits-logreg")

    run = run_worker("--framework", "sklearn", "--model", model.model, "--compare", tmp_path / "nope.pkl",
                     "--signature", model.signature, "--dataset", digits_csv, report=tmp_path / "r.json")

    assert run.returncode == 2
    assert "nope.pkl does not exist" in run.error_line
