"""The real Trainer on port 0 with embedded PostgreSQL and real recipe processes in the ML
environment (.venv-ml), against a stand-in Registry (tests/fixtures/trainer.py): a real gRPC
RegistryService serving GetModel, GetDataset, DownloadDataset, DownloadModelRecipe,
ReportTrainingStatus and SubmitTrainingResult, because the Registry's model RPCs are built
concurrently. The end-to-end test through the real Registry is the Registry's."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time

import grpc
import psutil
import pytest
from mlmesh.registry.v1 import model_pb2
from mlmesh.trainer.v1 import trainer_service_pb2 as pb
from mlmesh.trainer.v1.trainer_service_pb2_grpc import TrainerServiceStub as TrainerStub

from servers.devstack.procs import free_port
from tests.fixtures import trainer as trainer_fixtures
from tests.fixtures.trainer import ML_PYTHON, REPO, tar_gz, zip_bytes

# The Trainer's fixtures (the root conftest lists the mesh-wide ones).
stand_in_registry = trainer_fixtures.stand_in_registry
trainer_factory = trainer_fixtures.trainer_factory

pytestmark = pytest.mark.skipif(not ML_PYTHON.exists(), reason="the ML environment .venv-ml is missing (make ml-venv)")

S = pb.TrainingJob

RECIPE_TOML = """
[recipe]
name = "tiny-logreg"
entrypoint = "train.py"
framework = "sklearn"
[recipe.input]
shape = [-1, 4]
dtype = "float32"
csv_feature_columns = [0, 4]
scale = 0.5
[recipe.parameters]
max_iter = 200
"""

TRAIN_PY = """
import json, os, pickle, sys

print("ENV " + json.dumps(sorted(os.environ)))  # before numpy and sklearn add their own
import numpy as np
from sklearn.linear_model import LogisticRegression

print("CWD " + os.getcwd() + " WORK " + os.environ["MLMESH_WORK_DIR"])
params = json.loads(os.environ["MLMESH_PARAMS"])
data = np.loadtxt(os.environ["MLMESH_DATASET_PATH"], delimiter=",", skiprows=1)
x, y = data[:, :4] * 0.5, data[:, 4].astype(int)
model = LogisticRegression(max_iter=params["max_iter"], random_state=int(os.environ["MLMESH_SEED"])).fit(x, y)
print(f"accuracy {model.score(x, y):.3f}")
print("a warning on stderr", file=sys.stderr)
with open(os.environ["MLMESH_OUTPUT_PATH"], "wb") as f:
    pickle.dump(model, f)
"""


def csv_dataset(rows: int = 200) -> bytes:
    rng = random.Random(7)
    lines = ["f0,f1,f2,f3,label"]
    for _ in range(rows):
        xs = [rng.uniform(-1, 1) for _ in range(4)]
        lines.append(",".join(f"{x:.4f}" for x in xs) + f",{int(xs[0] + xs[1] > 0)}")
    return ("\n".join(lines) + "\n").encode()


def recipe(train_py: str = TRAIN_PY, toml: str = RECIPE_TOML, **extra) -> bytes:
    return tar_gz({"recipe.toml": toml, "train.py": train_py, **extra})


async def wait_for(stub, job_id: str, states, timeout: float = 30.0) -> pb.TrainingJob:
    deadline = time.monotonic() + timeout
    while True:
        job = await stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job_id))
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stayed {S.State.Name(job.state)}: {job.failure_reason}")
        await asyncio.sleep(0.1)


FINAL = (S.STATE_SUCCEEDED, S.STATE_FAILED, S.STATE_CANCELLED)


async def submit(stub, model_id: str, **limits) -> pb.TrainingJob:
    return await stub.SubmitTrainingJob(pb.SubmitTrainingJobRequest(model_id=model_id, **limits))


async def test_sklearn_recipe_trains_and_its_artifact_reaches_the_registry(trainer_factory, stand_in_registry):
    # Prepare
    trainer = await trainer_factory()
    dataset = csv_dataset()
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(dataset), recipe())
    # Execute
    job = await submit(trainer.stub, model_id)
    again = await submit(trainer.stub, model_id)
    events = [e async for e in trainer.stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job.job_id))]
    # Assert
    assert again.job_id == job.job_id, "a second submit for a live job returns it"
    done = await trainer.stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job.job_id))
    assert done.state == S.STATE_SUCCEEDED, done.failure_reason
    assert done.framework == "sklearn" and done.dataset_id and done.executor == "local"
    assert done.HasField("start_time") and done.HasField("end_time")
    [result] = stand_in_registry.results
    assert result.model_id == model_id and result.training_job_id == job.job_id and result.framework == "sklearn"
    assert json.loads(result.input_signature) == {"shape": [None, 4], "dtype": "float32",
                                                  "csv_feature_columns": [0, 4], "scale": 0.5}
    assert stand_in_registry.reports_for(model_id) == [(model_pb2.Model.STATE_TRAINING, "")]
    # The artifact is the recipe's pickle, and it predicts.
    check = subprocess.run(
        [str(ML_PYTHON), "-c", "import pickle, sys; m = pickle.loads(sys.stdin.buffer.read()); "
                               "print(m.predict([[1, 1, 0, 0], [-1, -1, 0, 0]]).tolist())"],
        input=result.data, capture_output=True, timeout=60)
    assert check.stdout.decode().strip() == "[1, 0]", check.stderr.decode()
    # Watch: the job first, then states in order and the log lines, ending SUCCEEDED.
    states = [e.job.state for e in events if e.WhichOneof("event") == "job"]
    assert states == sorted(states) and len(set(states)) == len(states), states  # in order, none twice
    assert states[-2:] == [S.STATE_POST_TRAINING, S.STATE_SUCCEEDED]
    logs = [e.log for e in events if e.WhichOneof("event") == "log"]
    assert [ln.sequence for ln in logs] == list(range(1, len(logs) + 1))
    texts = {(ln.stream, ln.text) for ln in logs}
    assert ("stderr", "a warning on stderr") in texts and any(t.startswith("accuracy") for s, t in texts)
    env_line = next(ln.text for ln in logs if ln.text.startswith("ENV "))
    env = set(json.loads(env_line[4:])) - {"LC_CTYPE"}
    assert env <= {"PATH", "HOME", "LANG", "TMPDIR", "PYTHONUNBUFFERED", "MLMESH_DATASET_PATH",
                   "MLMESH_DATASET_CONTENT_TYPE", "MLMESH_OUTPUT_PATH", "MLMESH_PARAMS", "MLMESH_SEED",
                   "MLMESH_WORK_DIR"}, env
    cwd, work = next(ln.text for ln in logs if ln.text.startswith("CWD "))[4:].split(" WORK ")
    assert os.path.realpath(cwd) == os.path.realpath(work)
    # Replay from a sequence: only the later lines.
    replay = [e async for e in trainer.stub.WatchTrainingJob(
        pb.WatchTrainingJobRequest(job_id=job.job_id, after_log_sequence=len(logs) - 2))]
    assert replay[0].job.state == S.STATE_SUCCEEDED
    assert [e.log.sequence for e in replay[1:]] == [len(logs) - 1, len(logs)]
    # The job's directory (with its dataset copy) is gone; a new submit makes a new job.
    assert not (trainer.settings.work_dir / "jobs" / job.job_id).exists()
    listed = await trainer.stub.ListTrainingJobs(pb.ListTrainingJobsRequest(model_id=model_id))
    assert [j.job_id for j in listed.training_jobs] == [job.job_id]


async def test_crashing_recipe_fails_with_its_error_reported_to_the_registry(trainer_factory, stand_in_registry):
    trainer = await trainer_factory()
    crash = "import sys\nprint('starting')\nraise ValueError('the learning rate is negative')\n"
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(csv_dataset(5)), recipe(crash))
    job = await submit(trainer.stub, model_id)
    done = await wait_for(trainer.stub, job.job_id, FINAL)
    assert done.state == S.STATE_FAILED
    assert "exited with status 1" in done.failure_reason
    assert "ValueError: the learning rate is negative" in done.failure_reason
    assert stand_in_registry.reports_for(model_id)[-1] == (model_pb2.Model.STATE_FAILED, done.failure_reason)
    assert not stand_in_registry.results


async def test_time_and_memory_limits_fail_the_job_naming_the_limit(trainer_factory, stand_in_registry):
    trainer = await trainer_factory()
    sleeper = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n"
    hog = ("import time\nblocks = []\nfor _ in range(200):\n"
           "    blocks.append(bytearray(20 * 1024 * 1024))\n    time.sleep(0.02)\ntime.sleep(30)\n")
    ds = stand_in_registry.add_dataset(csv_dataset(5))
    slow_model = stand_in_registry.add_model(ds, recipe(sleeper))
    hog_model = stand_in_registry.add_model(ds, recipe(hog))
    started = time.monotonic()
    slow = await submit(trainer.stub, slow_model, time_limit_seconds=2)
    big = await submit(trainer.stub, hog_model, memory_limit_bytes=300 << 20)
    slow_done = await wait_for(trainer.stub, slow.job_id, FINAL)
    big_done = await wait_for(trainer.stub, big.job_id, FINAL)
    assert time.monotonic() - started < 20
    assert slow_done.state == S.STATE_FAILED
    assert slow_done.failure_reason == "the recipe exceeded its time limit of 2 s"
    assert big_done.state == S.STATE_FAILED
    assert big_done.failure_reason.startswith(f"the recipe exceeded its memory limit of {300 << 20} bytes (peak ")
    assert stand_in_registry.reports_for(hog_model)[-1] == (model_pb2.Model.STATE_FAILED, big_done.failure_reason)


@pytest.mark.parametrize("archive, filename, expected", [
    (tar_gz({"train.py": "print(1)\n"}), "r.tar.gz", "invalid recipe: the archive has no recipe.toml at its root"),
    (tar_gz({"recipe.toml": RECIPE_TOML.replace('"sklearn"', '"caffe"'), "train.py": ""}), "r.tgz",
     "invalid recipe: recipe.framework must be one of pytorch, sklearn, tensorflow, got 'caffe'"),
    (tar_gz({"recipe.toml": RECIPE_TOML, "train.py": "", "../escape.py": "x"}), "r.tar.gz",
     "invalid recipe: archive member '../escape.py' points outside the recipe ('..')"),
    (zip_bytes({"recipe.toml": RECIPE_TOML, "/etc/evil": "x"}), "r.zip",
     "invalid recipe: archive member '/etc/evil' has an absolute path"),
    (b"not an archive", "r.tar.gz", "invalid recipe: the recipe archive is not a readable tar.gz"),
])
async def test_malformed_recipes_fail_with_a_clear_reason(trainer_factory, stand_in_registry, tmp_path,
                                                          archive, filename, expected):
    trainer = await trainer_factory()
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(b"a,b\n1,2\n"), archive, filename=filename)
    job = await submit(trainer.stub, model_id)
    done = await wait_for(trainer.stub, job.job_id, FINAL)
    assert done.state == S.STATE_FAILED
    assert done.failure_reason.startswith(expected), done.failure_reason
    assert not (tmp_path / "escape.py").exists() and not (trainer.settings.work_dir / "escape.py").exists()
    assert stand_in_registry.reports_for(model_id) == [(model_pb2.Model.STATE_FAILED, done.failure_reason)]


async def test_tampered_recipe_fails_the_hash_check(trainer_factory, stand_in_registry):
    trainer = await trainer_factory()
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(b"x\n"), recipe(), recipe_sha256="0" * 64)
    done = await wait_for(trainer.stub, (await submit(trainer.stub, model_id)).job_id, FINAL)
    assert done.state == S.STATE_FAILED and "but the Registry records " + "0" * 64 in done.failure_reason


async def test_bad_requests_get_clear_statuses(trainer_factory, stand_in_registry):
    trainer = await trainer_factory()
    cases = [
        (trainer.stub.SubmitTrainingJob(pb.SubmitTrainingJobRequest(model_id="nope")), "INVALID_ARGUMENT"),
        (trainer.stub.SubmitTrainingJob(pb.SubmitTrainingJobRequest(model_id=stand_in_registry.add_model("d", b""),
                                                                    time_limit_seconds=10**9)), "INVALID_ARGUMENT"),
        (trainer.stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id="12")), "INVALID_ARGUMENT"),
        (trainer.stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id="6f0d8a57-0b7c-4c55-9d38-5c1c25a0b7a1")),
         "NOT_FOUND"),
        (trainer.stub.CancelTrainingJob(pb.CancelTrainingJobRequest(job_id="6f0d8a57-0b7c-4c55-9d38-5c1c25a0b7a1")),
         "NOT_FOUND"),
        (trainer.stub.ListTrainingJobs(pb.ListTrainingJobsRequest(page_token="garbage")), "INVALID_ARGUMENT"),
    ]
    for call, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code().name == code, info.value.details()
    for job_id, code in (("bad", "INVALID_ARGUMENT"), ("6f0d8a57-0b7c-4c55-9d38-5c1c25a0b7a1", "NOT_FOUND")):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in trainer.stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job_id)):
                pass
        assert info.value.code().name == code


async def test_cancel_kills_the_recipe_and_fails_the_model(trainer_factory, stand_in_registry, tmp_path):
    trainer = await trainer_factory()
    pid_file = tmp_path / "recipe.pid"
    sleeper = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(b"x\n"), recipe(sleeper))
    job = await submit(trainer.stub, model_id)
    await wait_for(trainer.stub, job.job_id, (S.STATE_TRAINING,))
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    cancelled = await trainer.stub.CancelTrainingJob(pb.CancelTrainingJobRequest(job_id=job.job_id))
    assert cancelled.state == S.STATE_CANCELLED
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert stand_in_registry.reports_for(model_id)[-1] == (model_pb2.Model.STATE_FAILED,
                                                           "the training job was cancelled")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await trainer.stub.CancelTrainingJob(pb.CancelTrainingJobRequest(job_id=job.job_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_watch_streams_live_states_and_lines(trainer_factory, stand_in_registry):
    trainer = await trainer_factory()
    chatty = ("import os, pickle, time\nfor i in range(5):\n    print(f'epoch {i}', flush=True)\n"
              "    time.sleep(0.1)\npickle.dump({'w': 1}, open(os.environ['MLMESH_OUTPUT_PATH'], 'wb'))\n")
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(b"x\n"), recipe(chatty))
    job = await submit(trainer.stub, model_id)
    seen, lines = [], []
    async for event in trainer.stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job.job_id)):
        if event.WhichOneof("event") == "job":
            seen.append(event.job.state)
        elif event.log.stream == "stdout":
            lines.append(event.log.text)
    assert lines == [f"epoch {i}" for i in range(5)]
    assert seen[-1] == S.STATE_SUCCEEDED and S.STATE_TRAINING in seen


async def test_kill_9_then_restart_fails_the_running_job_and_reports_it(trainer_factory, stand_in_registry,
                                                                       fresh_db_dsn, tmp_path):
    # Prepare: a Trainer process (as `make up` runs it) training a long recipe.
    pid_file = tmp_path / "orphan.pid"
    sleeper = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(b"x\n"), recipe(sleeper))
    port = free_port()
    env = {**os.environ, "MLMESH_TRAINER_PORT": str(port), "MLMESH_TRAINER_METRICS_PORT": "-1",
           "MLMESH_DATABASE_URL": fresh_db_dsn, "MLMESH_DATA_DIR": str(tmp_path / "data"),
           "MLMESH_TRAINER_REGISTRY_TARGET": f"127.0.0.1:{stand_in_registry.port}",
           "MLMESH_TRAINER_ML_PYTHON": str(ML_PYTHON)}
    with open(tmp_path / "trainer.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "servers.trainer.main"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = TrainerStub(channel)
            for _ in range(100):
                try:
                    job = await submit(stub, model_id)
                    break
                except grpc.aio.AioRpcError as err:
                    if err.code() != grpc.StatusCode.UNAVAILABLE or proc.poll() is not None:
                        raise AssertionError((tmp_path / "trainer.log").read_text()) from err
                    await asyncio.sleep(0.1)
            await wait_for(stub, job.job_id, (S.STATE_TRAINING,))
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.05)
        orphan = int(pid_file.read_text())
        # Execute: kill -9 the Trainer, start a new one on the same database and data dir.
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    assert psutil.pid_exists(orphan), "the recipe runs in its own session and outlives the Trainer"
    second = await trainer_factory()
    done = await wait_for(second.stub, job.job_id, FINAL, timeout=10)
    # Assert
    assert done.state == S.STATE_FAILED and done.failure_reason == "the Trainer restarted while the job was running"
    assert stand_in_registry.reports_for(model_id)[-1] == (model_pb2.Model.STATE_FAILED, done.failure_reason)
    assert not stand_in_registry.results
    for _ in range(20):
        if not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the new Trainer left the dead one's recipe running")


async def test_a_postgresql_restart_during_a_job_loses_no_line_and_the_job_succeeds(stand_in_registry, tmp_path):
    """The Trainer's own embedded PostgreSQL is stopped while the recipe runs and started again
    after the recipe has printed and ended: the job's log lines and its move to POST_TRAINING are
    retried through the outage (database_outage_seconds) instead of failing the job."""
    # Prepare: a recipe that waits for the test before printing and finishing
    from servers.devstack.postgres import start_postgres, stop_postgres

    started, go = tmp_path / "started", tmp_path / "go"
    waiting = (f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
               f"while not pathlib.Path({str(go)!r}).exists():\n    time.sleep(0.05)\n"
               "for i in range(50):\n    print(f'while the database was down {i}', flush=True)\n")
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(csv_dataset()), recipe(waiting + TRAIN_PY))
    pg_dir = tmp_path / "pg"
    port = free_port()
    pg, dsn = await asyncio.to_thread(start_postgres, pg_dir, port)
    trainer = None
    try:
        trainer = await trainer_fixtures.TrainerHandle(
            trainer_fixtures.trainer_settings(dsn, tmp_path / "data", stand_in_registry.port)).start()
        job = await submit(trainer.stub, model_id)
        await wait_for(trainer.stub, job.job_id, (S.STATE_TRAINING,))
        for _ in range(600):
            if started.exists():
                break
            await asyncio.sleep(0.05)
        # Execute: PostgreSQL goes away, the recipe prints and ends, PostgreSQL comes back 3 s later
        assert await asyncio.to_thread(stop_postgres, pg)
        go.touch()
        await asyncio.sleep(3)
        pg, _ = await asyncio.to_thread(start_postgres, pg_dir, port)
        done = await wait_for(trainer.stub, job.job_id, FINAL, timeout=60)
        events = [e async for e in trainer.stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job.job_id))]
    finally:
        if trainer is not None:
            await trainer.stop()
        await asyncio.to_thread(stop_postgres, pg)
    # Assert: the job succeeded with every line once, in order
    assert done.state == S.STATE_SUCCEEDED, done.failure_reason
    [result] = stand_in_registry.results
    assert result.model_id == model_id
    logs = [e.log for e in events if e.WhichOneof("event") == "log"]
    assert [ln.sequence for ln in logs] == list(range(1, len(logs) + 1))
    outage = [ln.text for ln in logs if ln.text.startswith("while the database was down")]
    assert outage == [f"while the database was down {i}" for i in range(50)]


def digits_csv() -> bytes:
    """scikit-learn's bundled handwritten digits as CSV (64 pixel columns, then the label)."""
    code = ("import sys, numpy as np; from sklearn.datasets import load_digits; d = load_digits(); "
            "np.savetxt(sys.stdout, np.column_stack([d.data, d.target]), delimiter=',', fmt='%g')")
    return subprocess.run([str(ML_PYTHON), "-c", code], capture_output=True, check=True, timeout=60).stdout


async def test_the_documented_template_recipe_trains(trainer_factory, stand_in_registry):
    template = REPO / "docs" / "recipe-template"
    archive = tar_gz({p.name: p.read_bytes() for p in template.iterdir() if p.is_file()})
    trainer = await trainer_factory()
    model_id = stand_in_registry.add_model(stand_in_registry.add_dataset(digits_csv()), archive)
    job = await submit(trainer.stub, model_id)
    events = [e async for e in trainer.stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job.job_id))]
    assert events[-1].job.state == S.STATE_SUCCEEDED, events[-1].job.failure_reason
    accuracy = next(e.log.text for e in events if e.log.text.startswith("test accuracy: "))
    assert float(accuracy.split(": ")[1]) > 0.9
    [result] = stand_in_registry.results
    assert json.loads(result.input_signature) == {"shape": [None, 64], "dtype": "float32",
                                                  "csv_feature_columns": [0, 64], "scale": 0.0625}


async def test_requirements_get_a_layered_environment_built_once(trainer_factory, stand_in_registry):
    # numpy is in the base environment: pip finds it through the .pth layer, offline.
    toml = RECIPE_TOML.replace('framework = "sklearn"', 'framework = "sklearn"\nrequirements = "requirements.txt"')
    probe = ("import os, pickle, sys, numpy\nprint('PREFIX', sys.prefix)\nprint('NUMPY', numpy.__file__)\n"
             "pickle.dump(1, open(os.environ['MLMESH_OUTPUT_PATH'], 'wb'))\n")
    archive = recipe(probe, toml, **{"requirements.txt": "numpy\n"})
    trainer = await trainer_factory()
    ds = stand_in_registry.add_dataset(b"x\n")
    outputs = []
    for _ in range(2):
        model_id = stand_in_registry.add_model(ds, archive)
        job = await submit(trainer.stub, model_id)
        events = [e async for e in trainer.stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job.job_id),
                                                                 timeout=120)]
        assert events[-1].job.state == S.STATE_SUCCEEDED, events[-1].job.failure_reason
        outputs.append({e.log.text.split(" ", 1)[0]: e.log.text.split(" ", 1)[1] for e in events
                        if e.log.text.startswith(("PREFIX ", "NUMPY ", "environment: building", "environment: reusing"))})
    envs = trainer.settings.work_dir / "envs"
    [env_dir] = [p for p in envs.iterdir() if not p.name.startswith(".")]
    assert outputs[0]["PREFIX"] == outputs[1]["PREFIX"] == str(env_dir)
    assert outputs[0]["NUMPY"].startswith(str(REPO / ".venv-ml")), "torch, numpy... come from the base environment"
    assert "environment:" in outputs[0] and outputs[0]["environment:"].startswith("building")
    assert outputs[1]["environment:"].startswith("reusing")


# -- access: a job belongs to its model's owner organization (docs/security.md) ----------------

OWNER, STRANGER = "smart-energy-ll", "other-utility"


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    """The header Envoy sets from a verified token's `org` claim."""
    return (("x-mlmesh-org", org),)


def owned_model(registry, org: str, dataset_id: str, archive: bytes) -> str:
    model_id = registry.add_model(dataset_id, archive)
    registry.models[model_id][0].organization_id = org
    return model_id


async def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_a_stranger_cannot_get_list_watch_or_cancel_another_organizations_job(trainer_factory,
                                                                                   stand_in_registry):
    # Prepare: a long job of OWNER's model (the Registry submits it: an internal call)
    trainer = await trainer_factory()
    sleeper = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n"
    model_id = owned_model(stand_in_registry, OWNER, stand_in_registry.add_dataset(b"x\n"), recipe(sleeper))
    job = await submit(trainer.stub, model_id)
    await wait_for(trainer.stub, job.job_id, (S.STATE_TRAINING,))
    unknown = "6f0d8a57-0b7c-4c55-9d38-5c1c25a0b7a1"
    stub, stranger = trainer.stub, as_org(STRANGER)
    # Execute + Assert: the stranger gets exactly what an unknown id gets
    for job_id in (job.job_id, unknown):
        got = await code_of(stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job_id), metadata=stranger))
        assert got.code() == grpc.StatusCode.NOT_FOUND
        assert got.details() == f"training job {job_id} does not exist"
        cancel = await code_of(stub.CancelTrainingJob(pb.CancelTrainingJobRequest(job_id=job_id), metadata=stranger))
        assert cancel.code() == grpc.StatusCode.NOT_FOUND and cancel.details() == got.details()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job_id), metadata=stranger):
                raise AssertionError("the stranger received an event")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and info.value.details() == got.details()
    for request in (pb.ListTrainingJobsRequest(), pb.ListTrainingJobsRequest(model_id=model_id)):
        listed = await stub.ListTrainingJobs(request, metadata=stranger)
        assert list(listed.training_jobs) == [] and listed.next_page_token == ""
    # ... and the job runs on, untouched; its owner sees, lists, watches and cancels it
    mine = await stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    assert mine.state == S.STATE_TRAINING
    listed = await stub.ListTrainingJobs(pb.ListTrainingJobsRequest(), metadata=as_org(OWNER))
    assert [j.job_id for j in listed.training_jobs] == [job.job_id]
    first = await anext(aiter(stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job.job_id),
                                                    metadata=as_org(OWNER))))
    assert first.job.job_id == job.job_id
    cancelled = await stub.CancelTrainingJob(pb.CancelTrainingJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    assert cancelled.state == S.STATE_CANCELLED
    # an internal caller (no organization: a mesh server) keeps access
    assert (await stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job.job_id))).state == S.STATE_CANCELLED


async def test_list_pages_hold_only_the_callers_jobs(trainer_factory, stand_in_registry):
    # Prepare: jobs of two organizations, interleaved, each failing at once (an empty archive)
    trainer = await trainer_factory()
    dataset = stand_in_registry.add_dataset(b"x\n")
    jobs = {OWNER: [], STRANGER: []}
    for i in range(6):
        org = (OWNER, STRANGER)[i % 2]
        job = await submit(trainer.stub, owned_model(stand_in_registry, org, dataset, b"not an archive"))
        jobs[org].append(job.job_id)
    # Execute: page through each organization's jobs two at a time
    for org, expected in jobs.items():
        seen, token = [], ""
        while True:
            page = await trainer.stub.ListTrainingJobs(pb.ListTrainingJobsRequest(page_size=2, page_token=token),
                                                       metadata=as_org(org))
            assert len(page.training_jobs) == 2 or not page.next_page_token  # full pages: filtered in SQL
            seen += [j.job_id for j in page.training_jobs]
            token = page.next_page_token
            if not token:
                break
        # Assert
        assert sorted(seen) == sorted(expected)
    everything = await trainer.stub.ListTrainingJobs(pb.ListTrainingJobsRequest(page_size=100))
    assert len(everything.training_jobs) == 6  # an internal caller sees every job


async def test_submit_for_a_user_is_refused_as_internal(trainer_factory, stand_in_registry):
    # SubmitTrainingJob is internal (servers/common/internal.py): the Registry calls it for itself. A call
    # carrying a user's organization never reaches the core, whoever owns the model.
    trainer = await trainer_factory()
    model_id = owned_model(stand_in_registry, OWNER, stand_in_registry.add_dataset(b"x\n"), recipe())
    for org in (STRANGER, OWNER):
        refused = await code_of(trainer.stub.SubmitTrainingJob(pb.SubmitTrainingJobRequest(model_id=model_id),
                                                               metadata=as_org(org)))
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "internal RPC" in refused.details()
    listed = await trainer.stub.ListTrainingJobs(pb.ListTrainingJobsRequest())
    assert list(listed.training_jobs) == []


class GrantingRegistry(trainer_fixtures.StandInRegistry):
    """The stand-in Registry, applying the organization a call is made for (x-mlmesh-org) to
    datasets as the real Registry does: its owner and its grantees read it, anyone else gets
    NOT_FOUND. It records the organization of every dataset and recipe request."""

    def __init__(self):
        super().__init__()
        self.owner: dict[str, str] = {}
        self.grantees: dict[str, set[str]] = {}
        self.on_behalf_of: list[tuple[str, str | None]] = []

    @staticmethod
    def _org(context) -> str | None:
        return dict(context.invocation_metadata() or ()).get("x-mlmesh-org")

    async def _readable(self, rpc: str, dataset_id: str, context) -> None:
        org = self._org(context)
        self.on_behalf_of.append((rpc, org))
        owner = self.owner.get(dataset_id)
        if org is not None and owner is not None and org != owner and org not in self.grantees.get(dataset_id, ()):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"dataset {dataset_id} does not exist")

    async def GetDataset(self, request, context):  # noqa: N802
        await self._readable("GetDataset", request.dataset_id, context)
        return await super().GetDataset(request, context)

    async def DownloadDataset(self, request, context):  # noqa: N802
        await self._readable("DownloadDataset", request.dataset_id, context)
        async for body in super().DownloadDataset(request, context):
            yield body

    async def DownloadModelRecipe(self, request, context):  # noqa: N802
        self.on_behalf_of.append(("DownloadModelRecipe", self._org(context)))
        async for body in super().DownloadModelRecipe(request, context):
            yield body


async def test_pre_train_fetches_on_behalf_of_the_jobs_organization(trainer_factory):
    # Prepare: A's dataset shared with B, B's model on it; then A revokes before B's second job
    registry = GrantingRegistry()
    server = grpc.aio.server()
    trainer_fixtures.reg_grpc.add_RegistryServiceServicer_to_server(registry, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        trainer = await trainer_factory(registry_target=f"127.0.0.1:{port}")
        dataset = registry.add_dataset(csv_dataset(50))
        registry.owner[dataset] = OWNER
        registry.grantees[dataset] = {STRANGER}
        shared_model = owned_model(registry, STRANGER, dataset, recipe())
        # Execute: B trains on the shared dataset
        done = await wait_for(trainer.stub, (await submit(trainer.stub, shared_model)).job_id, FINAL)
        # Assert: it trains, and every fetch was made for B
        assert done.state == S.STATE_SUCCEEDED, done.failure_reason
        assert registry.on_behalf_of == [("GetDataset", STRANGER), ("DownloadDataset", STRANGER),
                                         ("DownloadModelRecipe", STRANGER)]
        # Execute: A revokes; B's next job fails in pre-train, naming the dataset and B
        registry.grantees[dataset].clear()
        second = owned_model(registry, STRANGER, dataset, recipe())
        failed = await wait_for(trainer.stub, (await submit(trainer.stub, second)).job_id, FINAL)
        assert failed.state == S.STATE_FAILED
        assert failed.failure_reason.startswith(
            f"dataset {dataset} does not exist or is not shared with organization {STRANGER}"), failed.failure_reason
        assert registry.reports_for(second)[-1] == (model_pb2.Model.STATE_FAILED, failed.failure_reason)
        assert len(registry.results) == 1
    finally:
        await server.stop(0)
