"""Fixtures for the ML environment's tests.

The recipes and the Translator's conversion worker run in `.venv-ml/` (torch, TensorFlow, scikit-learn,
onnxruntime); these tests run in the mesh's virtualenv and drive them as subprocesses, exactly as the
Trainer and the Translator do. Nothing here imports an ML framework.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "examples" / "recipes"
# Few epochs: enough for the accuracy checks, quick on 2 cores.
TEST_PARAMS = {"digits-cnn": {"epochs": 3}, "digits-logreg": {}, "digits-keras": {"epochs": 3}}


@pytest.fixture(scope="session")
def ml_python() -> Path:
    """The ML virtualenv's interpreter; a missing one fails the run (it is part of the build, not optional)."""
    python = REPO / ".venv-ml" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make ml-venv` to build the ML environment", pytrace=False)
    return python


def ml_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture(scope="session")
def digits_csv(ml_python, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    subprocess.run(
        [ml_python, REPO / "examples" / "make_digits_csv.py", "--out", path], check=True, capture_output=True
    )
    return path


def recipe_meta(name: str) -> dict:
    with open(RECIPES / name / "recipe.toml", "rb") as f:
        return tomllib.load(f)["recipe"]


def signature_json(name: str) -> str:
    """The input signature as the Trainer hands it on: recipe.toml's [recipe.input], -1 as null."""
    spec = dict(recipe_meta(name)["input"])
    spec["shape"] = [None if d == -1 else d for d in spec["shape"]]
    return json.dumps(spec)


@dataclass
class Trained:
    recipe: str
    framework: str
    model: Path
    stdout: str
    metrics: dict  # the recipe's own "metrics: {...}" line

    @property
    def signature(self) -> str:
        return signature_json(self.recipe)


def train(ml_python: Path, recipe: str, dataset: Path, out_dir: Path, params: dict) -> Trained:
    meta = recipe_meta(recipe)
    suffix = {"pytorch": ".pt", "sklearn": ".pkl", "tensorflow": ".keras"}[meta["framework"]]
    model = out_dir / f"model{suffix}"
    env = ml_env() | {
        "MLMESH_DATASET_PATH": str(dataset),
        "MLMESH_OUTPUT_PATH": str(model),
        "MLMESH_PARAMS": json.dumps(params),
        "MLMESH_SEED": "1",
    }
    proc = subprocess.run(
        [ml_python, meta["entrypoint"]], cwd=RECIPES / recipe, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{recipe} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    metrics_lines = [line for line in proc.stdout.splitlines() if line.startswith("metrics: ")]
    assert metrics_lines, proc.stdout
    return Trained(recipe, meta["framework"], model, proc.stdout, json.loads(metrics_lines[-1].removeprefix("metrics: ")))


@pytest.fixture(scope="session")
def trained(ml_python, digits_csv, tmp_path_factory):
    """Trains each demo recipe once per session (on demand), with the small TEST_PARAMS."""
    cache: dict[str, Trained] = {}

    def get(recipe: str) -> Trained:
        if recipe not in cache:
            out = tmp_path_factory.mktemp(recipe)
            cache[recipe] = train(ml_python, recipe, digits_csv, out, TEST_PARAMS[recipe])
        return cache[recipe]

    return get


@dataclass
class WorkerRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict | None

    @property
    def error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def run_worker(ml_python):
    """Runs `python -m servers.translator.worker ARGS… --report R` in .venv-ml from the repo root."""

    def run(*args, report: Path) -> WorkerRun:
        cmd = [str(ml_python), "-m", "servers.translator.worker", *map(str, args), "--report", str(report)]
        proc = subprocess.run(cmd, cwd=REPO, env=ml_env(), capture_output=True, text=True, timeout=180)
        doc = json.loads(report.read_text()) if report.exists() else None
        return WorkerRun(proc.returncode, proc.stdout, proc.stderr, doc)

    return run
