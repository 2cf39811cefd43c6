"""End to end through Envoy: the processes `make up` starts, reached only via the front door
(REST with JSON, native gRPC, grpcurl with reflection), with real JWTs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import grpc
import httpx
import mlmesh
import pytest
from google.api import httpbody_pb2
from mlmesh.ledger.v1 import ledger_service_pb2, ledger_service_pb2_grpc
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.client import errors
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc


REPO = Path(__file__).resolve().parents[2]
GRPCURL = REPO / ".venv" / "bin" / "grpcurl"
ORG = "smart-energy-ll"


def _chunks(data: bytes, size: int = 64 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def rest_upload(stack, data: bytes, *, headers=None, **params):
    params = {"organization_id": ORG, "display_name": "readings", **params}
    headers = stack.auth() if headers is None else headers
    with httpx.Client(base_url=stack.base_url, timeout=60) as http:
        return http.post("/v1/datasets:upload", params=params, content=_chunks(data),
                         headers={**headers, "content-type": "text/csv"})


def list_ids(stack) -> set[str]:
    with mlmesh.Client(stack.envoy, token=stack.token()) as client:
        return {d.dataset_id for d in client.datasets.list()}


def object_files(stack) -> set[str] | None:
    """The Registry's stored objects; None for a --target deployment whose files are not here."""
    root = stack.data_dir / "objects"
    if stack.external and not root.is_dir():
        return None
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".partial" not in p.parts}


@pytest.fixture(scope="module")
def uploaded(stack):
    data = b"timestamp,kw\n" + b"".join(f"{i},{i % 97}.5\n".encode() for i in range(200_000))
    r = rest_upload(stack, data, samples_dimension="(200000,2)", filename="meter.csv")
    assert r.status_code == 200, r.text
    return r.json(), data


def test_rest_upload_returns_snake_case_json_with_hashes_and_contract(uploaded):
    ds, data = uploaded
    assert ds["organization_id"] == ORG and ds["display_name"] == "readings"
    assert ds["content_type"] == "text/csv" and ds["filename"] == "meter.csv"
    assert int(ds["size_bytes"]) == len(data)
    assert ds["md5"] == hashlib.md5(data).hexdigest()
    assert ds["sha256"] == hashlib.sha256(data).hexdigest()
    assert ds["contract_address"].startswith("0x") and len(ds["contract_address"]) == 42


def test_rest_get_list_download_and_provenance(stack, uploaded):
    ds, data = uploaded
    with httpx.Client(base_url=stack.base_url, headers=stack.auth(), timeout=60) as http:
        got = http.get(f"/v1/datasets/{ds['dataset_id']}")
        assert got.status_code == 200 and got.json() == ds
        listed = http.get("/v1/datasets", params={"organization_id": ORG, "page_size": 100}).json()
        assert ds["dataset_id"] in [d["dataset_id"] for d in listed["datasets"]]
        down = http.get(f"/v1/datasets/{ds['dataset_id']}:download")
        assert down.status_code == 200 and down.content == data
        assert down.headers["content-type"] == "text/csv"
        seed = http.get(f"/dataset/{ds['dataset_id']}")  # the seed's route, kept as a binding
        assert seed.status_code == 200 and seed.content == data
        resumed = http.get(f"/v1/datasets/{ds['dataset_id']}:download", params={"offset": 1000})
        assert resumed.content == data[1000:]
        prov = http.get(f"/v1/datasets/{ds['dataset_id']}/provenance").json()
    assert prov["consistent"] is True
    assert prov["on_chain"]["md5"] == ds["md5"] and prov["on_chain"]["sha256"] == ds["sha256"]
    assert prov["stored_sha256"] == ds["sha256"]
    assert all(c["ok"] for c in prov["checks"]) and len(prov["checks"]) >= 9


def test_seed_post_dataset_binding(stack):
    with httpx.Client(base_url=stack.base_url, timeout=60) as http:
        r = http.post("/dataset", params={"organization_id": ORG, "display_name": "seed route"},
                      content=b"a,b\n1,2\n", headers={**stack.auth(), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["md5"] == hashlib.md5(b"a,b\n1,2\n").hexdigest()


def test_list_paginates(stack):
    for i in range(3):
        assert rest_upload(stack, f"x,{i}\n".encode(), organization_id="paging-org",
                           headers=stack.auth("paging-org")).status_code == 200
    seen, token = [], ""
    with httpx.Client(base_url=stack.base_url, headers=stack.auth("paging-org"), timeout=30) as http:
        while True:
            page = http.get("/v1/datasets", params={"organization_id": "paging-org", "page_size": 2,
                                                     **({"page_token": token} if token else {})}).json()
            assert len(page.get("datasets", [])) <= 2
            seen += [d["dataset_id"] for d in page.get("datasets", [])]
            token = page.get("next_page_token", "")
            if not token:
                break
    assert len(seen) == 3 == len(set(seen))


def test_native_grpc_through_envoy(stack, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    with mlmesh.Client(stack.envoy, token=stack.token()) as client:
        ds = client.datasets.upload(src, organization_id=ORG, display_name="blob")
        assert ds.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
        out = client.datasets.download(ds.dataset_id, tmp_path / "copy.bin")
        assert out.read_bytes() == src.read_bytes()
        assert client.datasets.provenance(ds.dataset_id).consistent


def test_grpcurl_via_reflection(stack, uploaded):
    ds, _ = uploaded
    auth = ["-H", f"authorization: Bearer {stack.token()}"]
    listed = subprocess.run([str(GRPCURL), "-plaintext", *auth, stack.envoy, "list"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert "mlmesh.registry.v1.RegistryService" in listed.stdout
    got = subprocess.run(
        [str(GRPCURL), "-plaintext", *auth, "-d", json.dumps({"dataset_id": ds["dataset_id"]}), stack.envoy,
         "mlmesh.registry.v1.RegistryService/GetDataset"], capture_output=True, text=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["sha256"] == ds["sha256"]


# -- the front door's checks ------------------------------------------------------------------

def test_no_token_is_401(stack):
    assert httpx.get(f"{stack.base_url}/v1/datasets").status_code == 401


def test_wrong_audience_is_403(stack):
    r = httpx.get(f"{stack.base_url}/v1/datasets", headers=stack.auth(audience="someone-else"))
    assert r.status_code == 403


def test_expired_token_is_401(stack):
    r = httpx.get(f"{stack.base_url}/v1/datasets", headers=stack.auth(ttl_seconds=-120))
    assert r.status_code == 401


def test_native_grpc_without_token_is_unauthenticated(stack):
    with mlmesh.Client(stack.envoy, token="") as client, pytest.raises(errors.Unauthenticated) as info:
        list(client.datasets.list())
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_ledger_is_not_reachable_through_envoy(stack):
    with grpc.insecure_channel(stack.envoy) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetChainInfo(ledger_service_pb2.GetChainInfoRequest(),
                              metadata=(("authorization", f"Bearer {stack.token()}"),), timeout=10)
    assert info.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND)


def test_internal_registry_rpcs_are_not_reachable_through_envoy(stack):
    def result():
        yield svc.SubmitTrainingResultRequest(model_id="5d066d58-06de-47ab-a2f6-c8f413e21947")

    with grpc.insecure_channel(stack.envoy) as channel:
        stub = svc_grpc.RegistryServiceStub(channel)
        meta = (("authorization", f"Bearer {stack.token()}"),)
        with pytest.raises(grpc.RpcError) as info:
            stub.SubmitTrainingResult(result(), metadata=meta, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as info:
            stub.ReportTrainingStatus(svc.ReportTrainingStatusRequest(), metadata=meta, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_uploading_for_another_organization_is_403(stack):
    r = rest_upload(stack, b"x\n", organization_id="someone-else")
    assert r.status_code == 403, r.text
    assert r.json()["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]


# -- bad input: the right status, and nothing stored ------------------------------------------

def _status(r: httpx.Response) -> tuple[int, int, str]:
    body = r.json()
    return r.status_code, body.get("code"), body.get("message", "")


def test_unknown_dataset_is_404(stack):
    r = httpx.get(f"{stack.base_url}/v1/datasets/5d066d58-06de-47ab-a2f6-c8f413e21947", headers=stack.auth())
    status, code, message = _status(r)
    assert (status, code) == (404, grpc.StatusCode.NOT_FOUND.value[0])
    assert "5d066d58-06de-47ab-a2f6-c8f413e21947" in message


def test_malformed_dataset_id_is_400(stack):
    status, code, message = _status(httpx.get(f"{stack.base_url}/v1/datasets/not-a-uuid", headers=stack.auth()))
    assert (status, code) == (400, grpc.StatusCode.INVALID_ARGUMENT.value[0]) and "UUID" in message


@pytest.mark.parametrize(
    "params, body, reason_word",
    [
        ({}, b"", "empty"),
        ({"display_name": ""}, b"a,b\n", "display_name"),
        ({"expected_sha256": "0" * 64}, b"a,b\n", "SHA-256"),
        ({"expected_md5": "0" * 32}, b"a,b\n", "MD5"),
        ({"expected_md5": "zz"}, b"a,b\n", "expected_md5"),
    ],
    ids=["empty-upload", "metadata-missing", "sha256-mismatch", "md5-mismatch", "malformed-hash"],
)
def test_bad_uploads_are_400_and_store_nothing(stack, params, body, reason_word):
    before_ids, before_objects = list_ids(stack), object_files(stack)
    r = rest_upload(stack, body, **params)
    status, code, message = _status(r)
    assert (status, code) == (400, grpc.StatusCode.INVALID_ARGUMENT.value[0]), r.text
    assert reason_word in message
    assert list_ids(stack) == before_ids
    assert object_files(stack) == before_objects


def test_native_upload_without_metadata_is_invalid_argument(stack):
    def only_bytes():
        yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=b"abc"))

    with grpc.insecure_channel(stack.envoy) as channel, pytest.raises(grpc.RpcError) as info:
        svc_grpc.RegistryServiceStub(channel).UploadDataset(
            only_bytes(), metadata=(("authorization", f"Bearer {stack.token()}"),), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_query_parameter_is_400(stack):
    r = httpx.get(f"{stack.base_url}/v1/datasets", params={"colour": "red"}, headers=stack.auth())
    assert r.status_code == 400
