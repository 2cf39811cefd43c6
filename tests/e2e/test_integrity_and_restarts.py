"""Integrity under tampering, restarts and crashes, through Envoy on the processes `make up` starts.

These tests stop and start parts of the stack; they run after test_datasets_via_envoy.py
(pytest runs files in name order) and leave the stack up for whatever follows.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

import grpc
import httpx
import mlmesh
import pytest
from google.api import httpbody_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.client import errors
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc


ORG = "smart-energy-ll"
pytestmark = pytest.mark.controls_processes


def _upload(stack, data: bytes, name: str) -> dict:
    r = httpx.post(f"{stack.base_url}/v1/datasets:upload", params={"organization_id": ORG, "display_name": name},
                   content=data, headers={**stack.auth(), "content-type": "application/octet-stream"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_tampered_bytes_fail_download_with_data_loss(stack, tmp_path):
    data = os.urandom(300_000)
    ds = _upload(stack, data, "to be tampered")
    path = stack.data_dir / "objects" / "datasets" / ds["dataset_id"]
    assert path.read_bytes() == data
    tampered = bytearray(data)
    tampered[1234] ^= 0xFF
    path.write_bytes(bytes(tampered))  # behind the Registry's back: same size, one bit off

    r = httpx.get(f"{stack.base_url}/v1/datasets/{ds['dataset_id']}:download", headers=stack.auth(), timeout=60)
    assert r.status_code == 500 and r.json()["code"] == grpc.StatusCode.DATA_LOSS.value[0], r.text
    assert "do not match the ledger" in r.json()["message"]
    with mlmesh.Client(stack.envoy, token=stack.token()) as client:
        with pytest.raises(errors.DataLoss) as info:
            client.datasets.download(ds["dataset_id"], tmp_path / "out.bin")
        assert info.value.code == grpc.StatusCode.DATA_LOSS
        assert not (tmp_path / "out.bin").exists()
        prov = client.datasets.provenance(ds["dataset_id"])
    assert not prov.consistent
    failed = {c.name for c in prov.checks if not c.ok}
    assert failed == {"stored md5 = chain md5", "stored sha256 = chain sha256"}


def test_down_up_keeps_every_dataset(stack, tmp_path):
    data = os.urandom(100_000)
    kept = _upload(stack, data, "survives restarts")
    with mlmesh.Client(stack.envoy, token=stack.token()) as client:
        before = {d.dataset_id: d for d in client.datasets.list()}
    stack.devstack("down")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.base_url}/v1/datasets", headers=stack.auth(), timeout=5)
    stack.devstack("up")
    with mlmesh.Client(stack.envoy, token=stack.token()) as client:
        after = {d.dataset_id: d for d in client.datasets.list()}
        assert after == before
        for dataset_id, ds in after.items():
            if ds.display_name == "to be tampered":
                continue
            prov = client.datasets.provenance(dataset_id)
            assert prov.consistent, (dataset_id, [c for c in prov.checks if not c.ok])
        out = client.datasets.download(kept["dataset_id"], tmp_path / "kept.bin")
    assert out.read_bytes() == data


def test_kill_9_of_the_registry_mid_upload(stack):
    acknowledged = _upload(stack, b"acknowledged before the crash\n", "before crash")
    with mlmesh.Client(stack.envoy, token=stack.token()) as client:
        before = {d.dataset_id for d in client.datasets.list()}
    sent = threading.Event()
    outcome: dict = {}

    def slow_upload():
        def messages():
            yield svc.UploadDatasetRequest(organization_id=ORG, display_name="interrupted")
            for i in range(400):
                yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=os.urandom(256 * 1024)))
                if i == 20:
                    sent.set()
                time.sleep(0.02)

        with grpc.insecure_channel(stack.envoy) as channel:
            try:
                svc_grpc.RegistryServiceStub(channel).UploadDataset(
                    messages(), metadata=(("authorization", f"Bearer {stack.token()}"),), timeout=120)
                outcome["result"] = "completed"
            except grpc.RpcError as exc:
                outcome["result"] = exc.code()

    thread = threading.Thread(target=slow_upload)
    thread.start()
    assert sent.wait(60)
    partial_dir = stack.data_dir / "objects" / ".partial"
    assert any(partial_dir.iterdir()), "the upload should be writing a partial file"
    os.kill(stack.pid("registry"), signal.SIGKILL)
    thread.join(60)
    assert outcome["result"] in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
                                 grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN), outcome

    stack.devstack("up")  # restarts what is missing: the Registry
    with mlmesh.Client(stack.envoy, token=stack.token()) as client:
        after = {d.dataset_id for d in client.datasets.list()}
        assert after == before, "no partial dataset is visible and nothing acknowledged is lost"
        assert client.datasets.provenance(acknowledged["dataset_id"]).consistent
    assert not any(partial_dir.iterdir()), "the restarted Registry cleans partial uploads"
    assert hashlib.sha256(b"acknowledged before the crash\n").hexdigest() == acknowledged["sha256"]
