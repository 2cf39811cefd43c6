"""The mlmesh-client wheel as a user installs it: `make dist`'s build, `pip install` into fresh
virtualenvs holding only its dependencies at the oldest (protobuf 5.29, grpcio 1.68) and the newest
(protobuf 7, grpcio 1.85) supported versions, then the SDK (sync and asyncio) against the stack
through Envoy. The script runs with `python -I` from / : no repository code can leak in."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
ORG = "wheel-org"

SCRIPT = textwrap.dedent(r"""
    import asyncio, io, json, os, sys, tempfile, pathlib, warnings
    warnings.simplefilter("error")              # a version warning from the stubs fails the test
    import google.protobuf, grpc
    import mlmesh, mlmesh.aio
    from mlmesh.client import errors
    target, token, other_token, csv_path = sys.argv[1:5]
    out = {"runtime": [google.protobuf.__version__, grpc.__version__], "mlmesh": mlmesh.__file__}
    # every generated module imports beside the SDK
    import importlib
    root = pathlib.Path(mlmesh.__file__).parent
    for path in sorted(root.rglob("*_pb2*.py")):
        importlib.import_module(".".join(("mlmesh", *path.relative_to(root).with_suffix("").parts)))
    for name in ("servers", "clients"):
        try:
            importlib.import_module(name)
            out[name] = "importable"
        except ImportError:
            out[name] = "absent"

    client = mlmesh.Client(target, token=token)
    data = pathlib.Path(csv_path).read_bytes()
    sent = []
    ds = client.datasets.upload(csv_path, display_name="wheel reference", content_type="text/csv",
                                progress=sent.append)
    out["uploaded"] = [ds.organization_id, ds.size_bytes == len(data) == sum(sent)]
    copy = pathlib.Path(tempfile.mkdtemp()) / "copy.csv"
    client.datasets.download(ds.dataset_id, copy)
    buf = io.BytesIO()
    client.datasets.download(ds.dataset_id, buf)
    out["downloaded"] = copy.read_bytes() == data == buf.getvalue()
    out["listed"] = ds.dataset_id in [d.dataset_id for d in client.datasets.list(owner=os.environ["ORG"], page_size=1)]
    out["provenance"] = client.datasets.provenance(ds.dataset_id).consistent
    stranger = mlmesh.Client(target, token=other_token)
    try:
        stranger.datasets.get(ds.dataset_id)
    except errors.NotFound as exc:
        out["stranger"] = [exc.code.name, exc.reason, exc.domain, bool(exc.request_id)]
    client.datasets.share(ds.dataset_id, ["wheel-partner"])
    out["shared"] = ds.dataset_id in [d.dataset_id for d in stranger.datasets.list(owner=os.environ["ORG"])]

    learner = client.learners.create(
        display_name="wheel-" + ds.dataset_id[:8], backend="sklearn", task="regression", transformer="power-forecast",
        transformer_params={"window": 36, "horizon": 96, "interval_seconds": 900, "scale_min": 0, "scale_max": 80},
        reference_dataset_id=ds.dataset_id, save_policy={"min_observations": 10**6})
    rows = [line.split(",") for line in data.decode().splitlines()[1:]]
    readings = [{"sensor_id": "m-1", "time": t, "value": float(v)} for t, v in rows]
    acks = list(client.learners.learn(learner.learner_id, readings[:400], batch_size=100))
    out["learned"] = [len(acks) >= 4, acks[-1].observations_received]  # one ack per message, and at the end
    forecast = client.learners.predict(learner.learner_id, sensor_id="m-1")
    out["forecast"] = len(forecast.predictions[0].values)
    window = [[float(v) / 80 for _, v in rows[i:i + 36]] for i in range(3)]
    out["stream"] = [len(r.predictions) for r in client.learners.predict_stream(learner.learner_id, window)]
    try:  # Captum needs a differentiable model: the server says so, the SDK carries the reason
        client.learners.explain(learner.learner_id, sensor_id="m-1")
    except errors.FailedPrecondition as exc:
        out["explain"] = exc.reason

    async def twin():
        async with mlmesh.aio.Client(target, token=token) as aclient:
            got = await aclient.learners.get(learner.learner_id)
            listed = [x.learner_id async for x in aclient.learners.list()]

            async def more():
                for r in readings[400:600]:
                    yield r

            acks = [a async for a in aclient.learners.learn(learner.learner_id, more(), batch_size=100)]
            try:
                await aclient.learners.get("00000000-0000-0000-0000-000000000000")
            except errors.NotFound as exc:
                missing = exc.reason
            await aclient.learners.delete(learner.learner_id)
            return [got.observations_learned > 0, learner.learner_id in listed, acks[-1].observations_received,
                    missing]

    out["aio"] = asyncio.run(twin())
    print(json.dumps(out))
""")


def _python_with_wheel(tmp: Path, which: str, wheel: Path) -> Path:
    """A fresh virtualenv with the pinned dependencies of `which` (oldest/newest) and the wheel."""
    env_dir = tmp / f"venv-{which}"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    reqs = REPO / "requirements"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(reqs / f"client-{which}.txt"),
                    "-c", str(reqs / f"client-{which}.lock"), str(wheel)], check=True, capture_output=True)
    return python


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, str(REPO / "packages/mlmesh-client/build_wheel.py"), "--out",
                             str(tmp / "dist"), "--build", str(tmp / "build")], capture_output=True, text=True,
                            check=True)
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def power_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("power") / "meter.csv"
    subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_power_csv.py"), "--out", str(path), "--days", "7",
                    "--seed", "11"], check=True, capture_output=True)
    return path


@pytest.mark.parametrize("which, runtime", [("oldest", ["5.29.5", "1.68.1"]), ("newest", ["7.36.2", "1.85.0"])])
def test_the_wheel_works_in_a_fresh_environment(stack, wheel, power_csv, tmp_path, which, runtime):
    # Prepare: a virtualenv with nothing but the wheel and its dependencies at one end of the range
    python = _python_with_wheel(tmp_path, which, wheel)

    # Execute: the SDK through Envoy, from / with an isolated interpreter
    result = subprocess.run(
        [str(python), "-I", "-c", SCRIPT, stack.envoy, stack.token(ORG), stack.token("wheel-partner"),
         str(power_csv)], cwd="/", capture_output=True, text=True, timeout=600, env={"ORG": ORG, "PATH": "/usr/bin"})

    # Assert
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["runtime"] == runtime
    assert out["mlmesh"].startswith(str(tmp_path))  # the wheel's copy, not the repository's
    assert (out["servers"], out["clients"]) == ("absent", "absent")
    assert out["uploaded"] == [ORG, True] and out["downloaded"] and out["listed"] and out["provenance"]
    assert out["stranger"] == ["NOT_FOUND", "DATASET_NOT_FOUND", "registry.mlmesh", True]
    assert out["shared"]
    assert out["learned"] == [True, 400] and out["forecast"] >= 1
    assert out["stream"] == [1, 1, 1] and out["explain"] == "EXPLAINER_UNAVAILABLE"
    assert out["aio"] == [True, True, 200, "LEARNER_NOT_FOUND"]
