"""The ML environment is what requirements/ml.txt says, and it stays out of the mesh's virtualenv."""

from __future__ import annotations

import importlib.util
import subprocess

from tests.ml_workers.conftest import ml_env

CHECK = """
import importlib.metadata as m
for dist in ("torch", "onnx", "onnxruntime", "skl2onnx", "scikit-learn", "tensorflow-cpu", "tf2onnx", "pandas"):
    print(dist, m.version(dist))
"""


def test_ml_venv_has_the_pinned_cpu_torch_and_the_converters(ml_python):
    proc = subprocess.run([ml_python, "-c", CHECK], capture_output=True, text=True, check=True, env=ml_env())

    versions = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert versions["torch"] == "2.13.0+cpu"  # anything else is a CUDA build someone upgraded to
    assert versions["tensorflow-cpu"].startswith("2.21.")
    assert int(versions["pandas"].split(".")[0]) < 3


def test_ml_venv_dependencies_are_consistent(ml_python):
    proc = subprocess.run([ml_python, "-m", "pip", "check"], capture_output=True, text=True, env=ml_env())

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mesh_venv_has_no_ml_frameworks():
    for name in ("torch", "tensorflow", "onnxruntime", "sklearn"):
        assert importlib.util.find_spec(name) is None, f"{name} leaked into the mesh virtualenv"
