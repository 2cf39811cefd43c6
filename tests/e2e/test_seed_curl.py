"""The seed's own walk-through (section 4.3), run with the real curl binary through Envoy: the commands
verbatim, except the host and an `Authorization: Bearer` header. Multipart POST /dataset and POST
/model/ go to the Registry's HTTP front, GET /model/{id} to the transcoded seed route, and the seed's
GET /contract/{address} returns the seed's JSON for the dataset's and the model's contracts.

Two departures from the seed's text, neither in what a client sends: the seed prints the model's
train_image across two lines (a page break in the PDF), here it is one word; and the first command's
file is made here (random bytes), since MNIST's .mat file cannot be downloaded on these machines."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import httpx
import pytest

CURL = shutil.which("curl")
# The seed's organization and developer ids (section 4.3): the token is minted for that organization.
SEED_ORG = "5d066d58-06de-47ab-a2f6-c8f413e21947"
SEED_DEVELOPER = "dd8fca81-a999-40f5-81f0-68627e303a27"
TRAIN_IMAGE = "registry.gitlab.com/h2020-iot-ngin/enhancing_iot_intelligence/t3_4/ml-model-sharing/demo_model_image"

pytestmark = pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")


def _dataset_ids(stack, org: str) -> set[str]:
    """Every dataset `org` sees, through the front door (REST, all pages)."""
    ids: set[str] = set()
    token = ""
    while True:
        r = httpx.get(f"{stack.base_url}/v1/datasets", params={"page_size": 1000, "page_token": token},
                      headers=stack.auth(org), timeout=30)
        r.raise_for_status()
        ids |= {d["dataset_id"] for d in r.json()["datasets"]}
        token = r.json()["next_page_token"]
        if not token:
            return ids


def _object_files(stack) -> set[str] | None:
    """The Registry's stored objects; None for a --target deployment whose files are not here."""
    root = stack.data_dir / "objects"
    if stack.external and not root.is_dir():
        return None
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".partial" not in p.parts}


def _curl(stack, args: list[str], cwd, org: str = SEED_ORG) -> tuple[int, dict]:
    """Runs curl with `args` (the seed's, with the host swapped) plus the bearer header; returns
    (HTTP status, JSON body)."""
    headers = ["--header", f"Authorization: Bearer {stack.token(org)}"]
    out = subprocess.run([CURL, "--silent", "--show-error", "--write-out", "\n%{http_code}", *args, *headers],
                         cwd=cwd, capture_output=True, text=True, timeout=120, check=True)
    body, _, status = out.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_seed_walkthrough_verbatim(stack, tmp_path):
    # Prepare: the dataset file of the seed's first command.
    data = os.urandom(300_000)
    (tmp_path / "mnist-original.mat").write_bytes(data)
    url = stack.base_url

    # Execute: dataset registration, exactly the seed's form (file part first, then the metadata).
    status, dataset = _curl(stack, [
        "--request", "POST",
        "--url", f"{url}/dataset",
        "--header", "content-type: multipart/form-data",
        "--form", "dataset=@mnist-original.mat",
        "--form", """metadata={
    "organization_id": "5d066d58-06de-47ab-a2f6-c8f413e21947",
    "samples_dimension": "(1,32,32)"
  }""",
    ], tmp_path)
    assert status == 200, dataset
    assert dataset["display_name"] == "mnist-original.mat"  # no display_name in the seed: the file's name
    assert dataset["filename"] == "mnist-original.mat"
    assert dataset["organization_id"] == SEED_ORG
    assert dataset["md5"] == hashlib.md5(data).hexdigest()
    assert int(dataset["size_bytes"]) == len(data)

    # The seed's contract read (its Blockchain service's GET /contract/{address}).
    status, contract = _curl(stack, ["--request", "GET", "--url", f"{url}/contract/{dataset['contract_address']}"],
                             tmp_path)
    assert status == 200, contract
    assert contract == {"organization_id": SEED_ORG, "samples_dimension": "(1,32,32)", "size_bytes": len(data),
                        "hash": hashlib.md5(data).hexdigest()}

    # Model registration, the seed's metadata verbatim (its trailing comma included).
    status, model = _curl(stack, [
        "--request", "POST",
        "--url", f"{url}/model/",
        "--header", "content-type: multipart/form-data",
        "--form", """metadata={
    "model_params": {
      "developer_id": "dd8fca81-a999-40f5-81f0-68627e303a27",
      "organization_id": "5d066d58-06de-47ab-a2f6-c8f413e21947",
    },
    "data_params": {
      "dataset_id": "%s"
    }
  }""" % dataset["dataset_id"],
        "--form", f"train_image={TRAIN_IMAGE}",
    ], tmp_path)
    assert status == 200, model
    assert model["display_name"] == TRAIN_IMAGE  # no display_name: the image reference
    assert model["training_source"]["image"]["reference"] == TRAIN_IMAGE
    assert (model["developer_id"], model["dataset_id"]) == (SEED_DEVELOPER, dataset["dataset_id"])

    # Not trained (this Trainer runs recipes; images need Argo): the seed's answer.
    status, body = _curl(stack, ["--request", "GET", "--url", f"{url}/model/{model['model_id']}"], tmp_path)
    assert status == 400 and body["message"] == (
        f"Model {model['model_id']} has not been trained yet. Please, try again later.")

    status, contract = _curl(stack, ["--request", "GET", "--url", f"{url}/contract/{model['contract_address']}"],
                             tmp_path)
    assert status == 200, contract
    assert contract == {
        "model_params": {"developer_id": SEED_DEVELOPER, "organization_id": SEED_ORG,
                         # an unpinned image is anchored by its reference's text
                         "train_image_hash": hashlib.md5(TRAIN_IMAGE.encode()).hexdigest(), "res_hash": ""},
        "data_params": {"dataset_id": dataset["dataset_id"]},
    }

    # Assert: a stranger cannot read either contract (as if it did not exist); no token: 401.
    for address in (dataset["contract_address"], model["contract_address"]):
        status, body = _curl(stack, ["--url", f"{url}/contract/{address}"], tmp_path, org="stranger-org")
        assert status == 404 and body["details"][0]["reason"] == "CONTRACT_NOT_FOUND"
    status, body = _curl(stack, ["--url", f"{url}/contract/0x{'0' * 40}"], tmp_path)
    assert status == 404 and body["details"][0]["reason"] == "CONTRACT_NOT_FOUND"


@pytest.mark.parametrize("form, reason", [
    (["--header", "content-type: multipart/form-data", "--data-binary", "no boundary"], "MULTIPART_BOUNDARY"),
    (["--form", 'metadata={"samples_dimension": "(8,8)"}'], "MULTIPART_NO_FILE"),
    (["--form", "dataset=@a.csv", "--form", "metadata={not json"], "METADATA_NOT_JSON"),
    (["--form", "metadata={not json", "--form", "dataset=@a.csv"], "METADATA_NOT_JSON"),
    (["--form", "dataset=@a.csv", "--form", "dataset=@b.csv"], "MULTIPART_TWO_FILES"),
    (["--form", "dataset=@a.csv", "--form", 'metadata={"samples_dimension": 8}'], "METADATA_INVALID"),
    (["--form", "dataset=@a.csv", "--form", 'metadata={"sample_dimension": "(8,8)"}'], "METADATA_INVALID"),
])
def test_malformed_forms_are_400_and_store_nothing(stack, tmp_path, form, reason):
    # Prepare
    (tmp_path / "a.csv").write_bytes(b"x,y\n1,2\n" * 1000)
    (tmp_path / "b.csv").write_bytes(b"x,y\n3,4\n")
    before_ids, before_files = _dataset_ids(stack, "smart-energy-ll"), _object_files(stack)

    # Execute
    status, body = _curl(stack, ["--request", "POST", "--url", f"{stack.base_url}/dataset", *form], tmp_path,
                         org="smart-energy-ll")

    # Assert
    assert status == 400, body
    assert body["code"] == 3 and body["details"][0]["reason"] == reason
    assert len(body["message"]) < 400
    assert _dataset_ids(stack, "smart-energy-ll") == before_ids
    assert _object_files(stack) == before_files


def test_raw_body_form_of_the_seed_route_still_works(stack, tmp_path):
    status, dataset = _curl(stack, ["--request", "POST", "--url",
                                    f"{stack.base_url}/dataset?display_name=raw&samples_dimension=(2)",
                                    "--header", "content-type: text/csv", "--data-binary", "a,b\n1,2\n"],
                            tmp_path, org="smart-energy-ll")
    assert status == 200, dataset
    assert dataset["display_name"] == "raw" and dataset["size_bytes"] == "8"
