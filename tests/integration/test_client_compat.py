"""gen/ and the SDK work in a user's environment with the oldest supported runtimes
(protobuf 5.29, grpcio 1.68: requirements/compat.txt), against our real Registry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-compat"
REQS = REPO / "requirements" / "compat.txt"


@pytest.fixture(scope="session")
def compat_python() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / ".stamp"
    if not stamp.exists() or stamp.read_text() != REQS.read_text():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQS)], check=True,
                       capture_output=True)
        stamp.write_text(REQS.read_text())
    return python


SCRIPT = textwrap.dedent("""
    import sys, warnings, tempfile, pathlib
    warnings.simplefilter("error")          # a version warning from the gencode fails the test
    import google.protobuf, grpc
    from mlmesh.registry.v1 import dataset_pb2, registry_service_pb2, registry_service_pb2_grpc
    from mlmesh.ledger.v1 import ledger_service_pb2, ledger_service_pb2_grpc
    from clients.sdk import Registry
    print("runtime", google.protobuf.__version__, grpc.__version__)
    target = sys.argv[1]
    with Registry(target) as reg:
        src = pathlib.Path(tempfile.mkdtemp()) / "old-env.csv"
        src.write_bytes(b"t,kw\\n" * 5000)
        ds = reg.upload_file(src, organization_id="old-env-org", display_name="from protobuf 5")
        out = reg.download_file(ds.dataset_id, src.with_suffix(".copy"))
        assert out.read_bytes() == src.read_bytes()
        assert reg.provenance(ds.dataset_id).consistent
        try:
            reg.get("not-a-uuid")
        except grpc.RpcError as exc:
            print("error", exc.code().name)
        print("ok", ds.dataset_id)
""")


async def test_gen_and_sdk_work_on_protobuf_5_29_and_grpcio_1_68(compat_python, registry_server):
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'gen'}:{REPO}"}
    proc = await asyncio.create_subprocess_exec(
        str(compat_python), "-c", SCRIPT, f"127.0.0.1:{registry_server.port}", env=env, cwd="/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    out, err = out.decode(), err.decode()
    assert proc.returncode == 0, err
    assert "runtime 5.29.5 1.68.1" in out
    assert "error INVALID_ARGUMENT" in out
    assert "ok " in out
