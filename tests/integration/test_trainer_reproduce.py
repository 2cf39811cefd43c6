"""ReproduceModel through the real Registry (embedded PostgreSQL, the real Ledger on Anvil) and the
real Trainer (recipes and the comparison worker in .venv-ml): the seeded scikit-learn recipe
reproduces byte-identical; a one-epoch CNN's TorchScript archive differs and the reproduction
reports the measured output difference; a grantee reproduces a shared model only if it may read the
dataset; a stranger is told the model does not exist. Each finished reproduction is also a node of the
model's lineage and a signed statement of its export (mlmesh.client.provenance verifies it offline,
with the ledger anchor read from Anvil), seen only by the organization that ran it."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import tarfile
import time

import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.client import provenance
from mlmesh.registry.v1 import lineage_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.trainer.v1 import trainer_service_pb2 as pb

from tests.fixtures.provenance import verified_export
from tests.fixtures.trainer import ML_PYTHON, REPO

pytestmark = pytest.mark.skipif(not ML_PYTHON.exists(), reason="the ML environment .venv-ml is missing (make ml-venv)")

OWNER, GRANTEE, STRANGER = "smart-energy-ll", "grid-partner", "someone-else"
S = pb.TrainingJob
R = pb.Reproduction
FINAL = (S.STATE_SUCCEEDED, S.STATE_FAILED, S.STATE_CANCELLED)


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    return (("x-mlmesh-org", org),)


def recipe_tar(name: str, epochs: int | None = None) -> bytes:
    """examples/recipes/<name> packed as the CLI packs it; `epochs` rewrites recipe.toml's default."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted((REPO / "examples" / "recipes" / name).iterdir()):
            if not path.is_file():
                continue
            data = path.read_bytes()
            if path.name == "recipe.toml" and epochs is not None:
                text = data.decode()
                assert "\nepochs = " in text
                data = "\n".join(f"epochs = {epochs}" if ln.startswith("epochs = ") else ln
                                 for ln in text.splitlines()).encode()
            info = tarfile.TarInfo(path.name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def upload(registry, org: str, data: bytes) -> str:
    async def gen():
        yield reg_pb.UploadDatasetRequest(organization_id=org, display_name="digits", filename="digits.csv",
                                          content_type="text/csv")
        for i in range(0, len(data), 256 * 1024):
            yield reg_pb.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + 256 * 1024]))
    return (await registry.UploadDataset(gen(), metadata=as_org(org))).dataset_id


async def trained_model(registry, trainer, org: str, dataset_id: str, archive: bytes) -> str:
    async def gen():
        yield reg_pb.CreateModelRequest(organization_id=org, developer_id="dev", dataset_id=dataset_id,
                                        display_name="m", recipe_filename="r.tar.gz")
        yield reg_pb.CreateModelRequest(chunk=httpbody_pb2.HttpBody(data=archive))
    model = await registry.CreateModel(gen(), metadata=as_org(org))
    job = await ended(trainer, model.training_job_id, org)
    assert job.state == S.STATE_SUCCEEDED, job.failure_reason
    return model.model_id


async def ended(trainer, job_id: str, org: str, timeout: float = 240.0) -> pb.TrainingJob:
    deadline = time.monotonic() + timeout
    while True:
        job = await trainer.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job_id), metadata=as_org(org))
        if job.state in FINAL:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stayed {S.State.Name(job.state)}"
        await asyncio.sleep(0.2)


async def reproduction_statements(registry, model_id: str, org: str, tmp_path, anvil_url: str):
    """The reproduction statements of `org`'s export of the model, once the offline verifier accepted it all."""
    _, report = await verified_export(registry, model_id, org, tmp_path, anvil_url)
    return [s for s in report.statements if s["predicateType"] == provenance.REPRODUCTION_PREDICATE]


@pytest.fixture
def mesh(registry_and_trainer):
    """(Registry stub, Trainer stub): tests/fixtures/trainer.py's real pair, one job at a time."""
    return registry_and_trainer


async def test_the_seeded_sklearn_recipe_reproduces_identical_for_a_grantee(mesh, translator_digits_csv, tmp_path,
                                                                           anvil_url):
    registry, trainer = mesh
    # Prepare: the owner's logistic regression on its digits; model and dataset shared with the grantee
    dataset_id = await upload(registry, OWNER, translator_digits_csv.read_bytes())
    model_id = await trained_model(registry, trainer, OWNER, dataset_id, recipe_tar("digits-logreg"))
    prov = await registry.GetModelProvenance(reg_pb.GetModelProvenanceRequest(model_id=model_id),
                                             metadata=as_org(OWNER))
    await registry.ShareModel(reg_pb.ShareModelRequest(model_id=model_id, organization_ids=[GRANTEE]),
                              metadata=as_org(OWNER))
    # Execute + Assert: without the dataset the grantee is refused, naming it
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await trainer.ReproduceModel(pb.ReproduceModelRequest(model_id=model_id), metadata=as_org(GRANTEE))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"dataset {dataset_id}" in info.value.details()
    # with it, the reproduction is the grantee's job, and the owner does not see it
    await registry.ShareDataset(reg_pb.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[GRANTEE]),
                                metadata=as_org(OWNER))
    job = await trainer.ReproduceModel(pb.ReproduceModelRequest(model_id=model_id), metadata=as_org(GRANTEE))
    again = await trainer.ReproduceModel(pb.ReproduceModelRequest(model_id=model_id), metadata=as_org(GRANTEE))
    assert again.job_id == job.job_id  # idempotent while live
    assert job.purpose == pb.PURPOSE_REPRODUCTION and job.model_id == model_id
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await trainer.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    done = await ended(trainer, job.job_id, GRANTEE)
    assert done.state == S.STATE_SUCCEEDED, done.failure_reason
    r = done.reproduction
    assert r.outcome == R.OUTCOME_IDENTICAL, r
    assert r.ledger_res_sha256 == prov.on_chain.res_sha256 == r.reproduced_sha256
    assert r.ledger_res_hash == prov.on_chain.res_hash
    assert (r.max_abs_diff, r.compared_samples) == (0.0, 0)
    # the model itself is untouched: still TRAINED by its own job
    model = await registry.GetModel(reg_pb.GetModelRequest(model_id=model_id), metadata=as_org(OWNER))
    assert model.training_job_id != job.job_id and model.res_sha256 == r.ledger_res_sha256
    # the grantee's lineage and export carry its reproduction, signed; the owner's do not
    theirs = await registry.GetModelLineage(reg_pb.GetModelLineageRequest(model_id=model_id), metadata=as_org(GRANTEE))
    [node] = [n for n in theirs.nodes if n.kind == lineage_pb2.LineageNode.KIND_REPRODUCTION]
    assert (node.resource_id, node.sha256, node.attributes["verdict"]) == (job.job_id, r.reproduced_sha256, "IDENTICAL")
    assert node.check_status == lineage_pb2.LineageNode.CHECK_STATUS_NOT_ANCHORED and all(c.ok for c in node.checks)
    [statement] = await reproduction_statements(registry, model_id, GRANTEE, tmp_path, anvil_url)
    assert statement["subject"][0]["digest"] == {"sha256": prov.on_chain.res_sha256, "md5": prov.on_chain.res_hash}
    assert statement["predicate"]["verdict"] == "IDENTICAL"
    reproduced = statement["predicate"]["reproduced"]
    assert (reproduced["jobId"], reproduced["digest"]) == (job.job_id, {"sha256": r.reproduced_sha256})
    assert statement["predicate"]["datasets"][0]["uri"] == f"mlmesh://datasets/{dataset_id}"
    assert statement["predicate"]["requestedBy"] == GRANTEE
    assert await reproduction_statements(registry, model_id, OWNER, tmp_path, anvil_url) == []


async def test_a_one_epoch_cnn_reports_its_measured_output_difference(mesh, translator_digits_csv, tmp_path,
                                                                      anvil_url):
    registry, trainer = mesh
    dataset_id = await upload(registry, OWNER, translator_digits_csv.read_bytes())
    model_id = await trained_model(registry, trainer, OWNER, dataset_id, recipe_tar("digits-cnn", epochs=1))

    job = await trainer.ReproduceModel(pb.ReproduceModelRequest(model_id=model_id), metadata=as_org(OWNER))
    done = await ended(trainer, job.job_id, OWNER)

    assert done.state == S.STATE_SUCCEEDED, done.failure_reason
    r = done.reproduction
    # TorchScript archives differ run to run (they embed a fresh code directory name), so the bytes differ
    assert r.outcome == R.OUTCOME_DIFFERENT, r
    assert r.reproduced_sha256 != r.ledger_res_sha256
    assert r.compared_samples == 1797  # every row of the registered dataset
    assert 0.0 <= r.max_abs_diff < float("inf")
    assert 0.0 <= r.top1_agreement <= 1.0
    assert "dataset rows" in r.method
    logs = [e.log.text async for e in trainer.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job.job_id),
                                                                metadata=as_org(OWNER)) if e.HasField("log")]
    assert any(text.startswith("compare: DIFFERENT bytes, max |original - reproduced|") for text in logs)
    [statement] = await reproduction_statements(registry, model_id, OWNER, tmp_path, anvil_url)
    p = statement["predicate"]
    assert (p["verdict"], p["reproduced"]["digest"]["sha256"]) == ("DIFFERENT", r.reproduced_sha256)
    assert p["comparison"]["maxAbsDiff"] == pytest.approx(r.max_abs_diff) and p["comparison"]["comparedSamples"] == 1797
    # an edited difference no longer verifies
    path = tmp_path / "edited.intoto.jsonl"
    exported = await registry.ExportModelAttestations(reg_pb.ExportModelAttestationsRequest(model_id=model_id),
                                                      metadata=as_org(OWNER))
    envelopes = [json.loads(line) for line in exported.envelopes]
    [env] = [e for e in envelopes if provenance.REPRODUCTION_PREDICATE.encode() in base64.b64decode(e["payload"])]
    edited = json.loads(base64.b64decode(env["payload"]))
    edited["predicate"]["comparison"]["maxAbsDiff"] = 0.0
    env["payload"] = base64.b64encode(json.dumps(edited).encode()).decode()
    path.write_text(json.dumps(env) + "\n")
    assert not provenance.verify_file(path, public_key_pem=exported.signing_key.public_key_pem).ok


async def test_a_stranger_or_an_unknown_id_is_not_found_word_for_word(mesh, translator_digits_csv):
    registry, trainer = mesh
    dataset_id = await upload(registry, OWNER, b"0,1\n1,0\n")
    async def gen():
        yield reg_pb.CreateModelRequest(organization_id=OWNER, developer_id="dev", dataset_id=dataset_id,
                                        display_name="m", recipe_filename="r.tar.gz")
        yield reg_pb.CreateModelRequest(chunk=httpbody_pb2.HttpBody(data=recipe_tar("digits-logreg")))
    model = await registry.CreateModel(gen(), metadata=as_org(OWNER))
    unknown = "0b0e8f4c-7a51-4b8e-9c55-0d6a2f1e3c77"

    answers = []
    for model_id in (model.model_id, unknown):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await trainer.ReproduceModel(pb.ReproduceModelRequest(model_id=model_id), metadata=as_org(STRANGER))
        answers.append((info.value.code(), info.value.details().replace(model_id, "ID")))

    assert answers[0] == answers[1]
    assert answers[0][0] == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await trainer.ReproduceModel(pb.ReproduceModelRequest(model_id="not-a-uuid"), metadata=as_org(OWNER))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
