"""Each image's own environment works inside it, as Kubernetes runs it (non-root, read-only root
filesystem, no network): the mesh image's `mlmesh` command on its SDK, the RL image's worker Python with
the Optimizer's libraries and worker module, the Flower image's with Flower on its own protobuf."""

from __future__ import annotations

import pytest

from tests.deploy.images.conftest import image, podman


def run_in(name: str, entrypoint: str, *args: str):
    if podman("image", "exists", image(name), check=False).returncode != 0:
        pytest.fail(f"image {name} is not built: run `make images`")
    return podman("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--entrypoint", entrypoint,
                  image(name), *args, check=False, timeout=300)


def test_the_mlmesh_command_runs_in_the_mesh_image():
    out = run_in("mesh", "mlmesh", "--help")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "demo" in out.stdout and "datasets" in out.stdout
    sdk = run_in("mesh", "python3", "-c", "import mlmesh, clients.cli; print(mlmesh.__file__)")
    assert sdk.returncode == 0 and "/app/packages/mlmesh-client/src/mlmesh/" in sdk.stdout, sdk.stderr[-3000:]


def test_the_rl_image_has_the_optimizer_worker_environment():
    code = ("import torch, stable_baselines3, gymnasium, pandapower, simbench, servers.optimizer.worker; "
            "print(torch.__version__, stable_baselines3.__version__, pandapower.__version__)")
    out = run_in("rl", "/opt/rl/bin/python", "-c", code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[:3] == ["2.13.0+cpu", "2.9.2", "3.5.6"]
    server = run_in("rl", "python3", "-c", "import os, servers.optimizer.main; print(os.environ['MLMESH_OPTIMIZER_RL_PYTHON'])")
    assert server.returncode == 0 and server.stdout.strip() == "/opt/rl/bin/python", server.stderr[-3000:]


def test_the_flower_image_has_flower_on_its_own_protobuf():
    out = run_in("flower", "/opt/flower/bin/python", "-c",
                 "import flwr, torch, google.protobuf as pb; print(flwr.__version__, torch.__version__, pb.__version__)")
    assert out.returncode == 0, out.stderr[-3000:]
    flwr, torch, protobuf = out.stdout.split()[:3]
    assert flwr == "1.42.0" and torch == "2.13.0+cpu" and int(protobuf.split(".")[0]) < 7
    server = run_in("flower", "python3", "-c", "import servers.federation.main, google.protobuf as pb; print(pb.__version__)")
    assert server.returncode == 0 and int(server.stdout.split(".")[0]) >= 7, "the server stays on the mesh's protobuf"
