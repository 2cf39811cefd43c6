"""Each demo recipe trains, converts to ONNX and keeps its accuracy in onnxruntime."""

from __future__ import annotations

import re

import pytest

RECIPES = ["digits-cnn", "digits-logreg", "digits-keras"]
EPOCH_LINE = re.compile(r"^epoch \d+: loss \d+\.\d+$", re.M)


@pytest.fixture(scope="session")
def converted(trained, run_worker, digits_csv, tmp_path_factory):
    """Converts each recipe's trained model once, with the parity batch on the recipe's test rows."""
    cache = {}

    def get(recipe: str):
        if recipe not in cache:
            model = trained(recipe)
            start, stop = model.metrics["test_rows"]
            out_dir = tmp_path_factory.mktemp(f"{recipe}-onnx")
            run = run_worker(
                "--framework", model.framework, "--model", model.model, "--signature", model.signature,
                "--dataset", digits_csv, "--out", out_dir / "model.onnx", "--rows", f"{start}:{stop}",
                report=out_dir.parent / f"{recipe}-report.json",
            )
            cache[recipe] = (model, out_dir, run)
        return cache[recipe]

    return get


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_and_reports_to_stdout(trained, recipe):
    model = trained(recipe)

    assert model.model.stat().st_size > 0
    assert "test accuracy: " in model.stdout
    assert model.metrics["test_rows"] == [1437, 1797]
    assert model.metrics["test_accuracy"] > 0.9
    if recipe != "digits-logreg":
        assert len(EPOCH_LINE.findall(model.stdout)) == 3  # TEST_PARAMS: 3 epochs, one loss line each


@pytest.mark.parametrize("recipe", RECIPES)
def test_conversion_passes_parity_on_the_test_rows(converted, recipe):
    model, out_dir, run = converted(recipe)

    assert run.returncode == 0, run.stderr[-3000:]
    report = run.report
    parity = report["parity"]
    assert report["ok"] and report["passed"] and parity["passed"]
    assert report["framework"] == model.framework
    assert (parity["atol"], parity["rtol"]) == (1e-5, 1e-3)
    assert parity["max_abs_diff"] <= parity["atol"]
    assert parity["top1_agreement"] >= 0.99
    assert report["batch"]["source"] == "dataset"
    assert report["batch"]["description"].startswith("dataset rows 1437..1796")
    assert report["batch"]["samples"] == 360
    assert report["export_batch_size"] >= 2
    assert report["opset"] == 18
    # one self-contained file, nothing beside it
    assert report["onnx"]["external_data"] is False
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_onnx_accuracy_matches_the_source_framework(converted, recipe):
    model, _, run = converted(recipe)

    acc = run.report["accuracy"]
    assert acc["label_column"] == 64 and acc["samples"] == 360
    # the worker's source-framework accuracy is the recipe's own test accuracy
    assert acc["source"] == pytest.approx(model.metrics["test_accuracy"], abs=1e-6)
    assert abs(acc["onnx"] - acc["source"]) <= 0.01


@pytest.mark.parametrize("recipe", RECIPES)
def test_onnx_batch_axis_is_dynamic(converted, run_worker, digits_csv, recipe, tmp_path):
    model, out_dir, _ = converted(recipe)

    shapes = {}
    for rows in ("0:1", "100:107"):
        run = run_worker(
            "--onnx-check", "--model", out_dir / "model.onnx", "--signature", model.signature,
            "--dataset", digits_csv, "--rows", rows, report=tmp_path / f"check-{rows}.json",
        )
        assert run.returncode == 0, run.stderr[-3000:]
        shapes[rows] = run.report["output_shapes"]

    assert run.report["onnx"]["inputs"][0]["shape"][0] == "batch"
    assert all(shape[0] == 1 for shape in shapes["0:1"].values())
    assert all(shape[0] == 7 for shape in shapes["100:107"].values())
    assert "probabilities" in shapes["0:1"] if recipe == "digits-logreg" else shapes["0:1"]["output"] == [1, 10]


def test_onnx_check_reports_accuracy_on_the_test_rows(converted, run_worker, digits_csv, tmp_path):
    model, out_dir, convert_run = converted("digits-cnn")

    run = run_worker(
        "--onnx-check", "--model", out_dir / "model.onnx", "--signature", model.signature,
        "--dataset", digits_csv, "--rows", "1437:1797", report=tmp_path / "check.json",
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.report["mode"] == "onnx-check"
    assert run.report["accuracy"]["onnx"] == pytest.approx(convert_run.report["accuracy"]["onnx"])


def test_a_dataset_that_is_not_csv_gives_synthetic_inputs(trained, run_worker, tmp_path):
    model = trained("digits-cnn")
    blob = tmp_path / "images.bin"
    blob.write_bytes(bytes(range(256)) * 64)

    run = run_worker(
        "--framework", "pytorch", "--model", model.model, "--signature", model.signature,
        "--dataset", blob, "--out", tmp_path / "model.onnx", "--samples", "32", report=tmp_path / "r.json",
    )

    assert run.returncode == 0, run.stderr[-3000:]
    batch = run.report["batch"]
    assert batch["source"] == "synthetic" and batch["samples"] == 32
    assert batch["description"].startswith("synthetic normal inputs")
    assert "not a CSV" in batch["description"]
    assert run.report["accuracy"] is None
    assert run.report["passed"]
