"""The UC10 transfer-learning recipe (seed 2.1.3.1): trains on a synthetic consumption series, beats the
repeat-the-last-value baseline, keeps its frozen GRU layer, reports interval and normality figures, and
converts to ONNX with parity. Runs make_power_csv, the recipe and the worker in .venv-ml as subprocesses."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import REPO, ml_env, recipe_meta, signature_json, train

RECIPE = "uc10-gru-transfer"


@pytest.fixture(scope="module")
def consumption_csv(ml_python, tmp_path_factory):
    path = tmp_path_factory.mktemp("power") / "consumption.csv"
    proc = subprocess.run(
        [ml_python, REPO / "examples" / "make_power_csv.py", "--out", path, "--days", "15", "--seed", "0"],
        capture_output=True, text=True, check=True,
    )
    assert "wrote 1440 rows of consumption" in proc.stdout
    return path


@pytest.fixture(scope="module")
def uc10(ml_python, consumption_csv, tmp_path_factory):
    # the recipe's defaults (20 pre-training + 50 fine-tuning epochs) take about 10-15 s on 2 cores
    return train(ml_python, RECIPE, consumption_csv, tmp_path_factory.mktemp(RECIPE), {})


def test_power_csv_has_the_shape_of_the_seed_data(ml_python, consumption_csv, tmp_path):
    lines = consumption_csv.read_text().splitlines()
    assert lines[0] == "timestamp,power_kw"
    assert len(lines) == 1 + 15 * 96
    assert lines[1].startswith("2024-03-04T00:00:00,") and lines[2].startswith("2024-03-04T00:15:00,")

    generation = tmp_path / "generation.csv"
    subprocess.run(
        [ml_python, REPO / "examples" / "make_power_csv.py", "--kind", "generation", "--days", "2", "--out", generation],
        capture_output=True, check=True,
    )
    rows = [line.split(",") for line in generation.read_text().splitlines()[1:]]
    assert len(rows) == 2 * 96
    night = [float(v) for t, v in rows if t[11:13] in ("00", "01", "02", "03", "04", "22", "23")]
    noon = [float(v) for t, v in rows if t[11:13] in ("12", "13")]
    assert night and all(v == 0.0 for v in night)
    assert min(noon) > 0.0


def test_recipe_declares_a_window_input():
    meta = recipe_meta(RECIPE)
    assert meta["framework"] == "pytorch"
    assert meta["input"] == {"shape": [-1, 36], "dtype": "float32"}  # no csv_feature_columns: see README.md
    params = meta["parameters"]
    assert (params["learning_rate"], params["batch_size"], params["window"], params["horizon"]) == (0.001, 128, 36, 96)


def test_transfer_learning_beats_the_baseline_and_keeps_the_frozen_layer(uc10):
    m = uc10.metrics
    out = uc10.stdout
    assert m["frozen_layer_unchanged"] is True
    assert "frozen layer gru1 unchanged after fine-tuning: True" in out
    assert "transfer: gru1 frozen" in out and "source task: the consumption of a different building" in out
    assert sum(line.startswith("finetune epoch ") for line in out.splitlines()) == 50
    assert sum(line.startswith("pretrain epoch ") for line in out.splitlines()) == 20
    assert m["windows"] == {"train": 916, "val": 196, "test": 197}
    assert 0 < m["val_mse"] < m["baseline_mse"]
    assert m["val_mse"] < m["mean_baseline_mse"]
    assert m["seconds"] < 60


def test_interval_and_normality_figures_are_sane(uc10):
    m = uc10.metrics
    for key in ("shapiro_p", "anderson_p", "dagostino_p"):
        assert 0.0 <= m[key] <= 1.0, key
    assert "goodness_of_fit" in m["anderson_p_method"]
    assert m["interval_halfwidth"] > 0
    assert 0.75 <= m["coverage"] <= 1.0
    assert "Shapiro-Wilk" in uc10.stdout and "Anderson-Darling" in uc10.stdout and "D'Agostino-Pearson" in uc10.stdout
    assert m["scale"]["max"] > m["scale"]["min"]


def test_torchscript_maps_windows_to_one_forecast(ml_python, uc10):
    code = (
        "import sys, torch\n"
        "m = torch.jit.load(sys.argv[1]).eval()\n"
        "with torch.inference_mode():\n"
        "    for n in (7, 1):\n"
        "        y = m(torch.rand(n, 36))\n"
        "        print(tuple(y.shape), y.dtype)\n"
    )
    proc = subprocess.run([ml_python, "-c", code, uc10.model], capture_output=True, text=True, env=ml_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["(7, 1) torch.float32", "(1, 1) torch.float32"]


def test_translation_to_onnx_passes_parity(uc10, run_worker, consumption_csv, tmp_path):
    run = run_worker(
        "--framework", "pytorch", "--model", uc10.model, "--signature", signature_json(RECIPE),
        "--dataset", consumption_csv, "--out", tmp_path / "model.onnx", report=tmp_path / "report.json",
    )

    assert run.returncode == 0, run.stderr[-3000:]
    report = run.report
    assert report["ok"] and report["passed"] and report["parity"]["passed"]
    assert report["parity"]["max_abs_diff"] <= report["parity"]["atol"]
    # a window of 36 samples is not a column range of one CSV row: the batch is synthetic, and says so
    assert report["batch"]["source"] == "synthetic"
    assert "no csv_feature_columns" in report["batch"]["description"]
    assert report["single_sample_output_shapes"] == [[1, 1]]
    assert report["onnx"]["inputs"][0]["shape"][0] == "batch"
    assert json.loads(signature_json(RECIPE)) == {"shape": [None, 36], "dtype": "float32"}
