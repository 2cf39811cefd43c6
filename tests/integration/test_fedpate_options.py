"""FedPATE's accuracy options through the real Federation server (port 0, embedded PostgreSQL, our
real Registry on the real Ledger) and the real FedPATE app on Flower (.venv-flower): a job asks
for k-means-chosen queries, student label spreading and Confident-GNMax through the API; it
succeeds, its privacy report carries the data-independent guarantee and, beside it, PATE's
data-dependent epsilon recomputed here from the votes.json the run left, and the student's
provenance in the Registry names the options."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.api import httpbody_pb2
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb

from servers.federation.domain import privacy
from tests.fixtures.federation import blobs_csv

OWNER = "smart-energy-ll"
J = pb.FederatedJob
REPO = Path(__file__).resolve().parents[2]
FLOWER_PYTHON = REPO / ".venv-flower" / "bin" / "python"


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    return (("x-mlmesh-org", org),)


async def upload(registry, org: str, data: bytes) -> str:
    async def chunks():
        yield reg_pb.UploadDatasetRequest(organization_id=org, display_name="blobs", filename="blobs.csv",
                                          content_type="text/csv", chunk=httpbody_pb2.HttpBody(data=data))
    return (await registry.UploadDataset(chunks(), metadata=as_org(org))).dataset_id


@pytest.fixture
async def flower_federation(registry, fresh_db_dsn, tmp_path):
    """(Federation stub, Registry stub, core) with the real FedPATE launcher on Flower; job
    directories kept so the test can read the votes.json the server read."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    if not FLOWER_PYTHON.exists():
        pytest.fail(f"{FLOWER_PYTHON} is missing: run `make flower-venv` (part of `make test`)", pytrace=False)
    registry_stub, registry_server = registry
    server, core = await build(FederationSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
        registry_target=f"127.0.0.1:{registry_server.port}", flower_python=FLOWER_PYTHON, keep_job_dirs=True))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield fed_grpc.FederationServiceStub(channel), registry_stub, core
    await server.stop(0, drain=0)


async def test_representative_queries_label_spreading_and_confident_gnmax_through_the_api(
        flower_federation) -> None:
    stub, registry, core = flower_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    # 4 teachers (2 per SuperNode) on 3 separable blobs; threshold 3 of 4 votes with little noise:
    # near-unanimous queries pass, so some are answered.
    spec = pb.FedPateSpec(
        net_name="mlp", num_teachers=4, teachers_per_node=2, num_rounds=1, teacher_epochs=10, student_epochs=30,
        batch_size=16, learning_rate=0.01, noise=pb.FedPateSpec.NOISE_GAUSSIAN, sigma=0.5, num_queries=80,
        noise_data=20, query_selection=pb.FedPateSpec.QUERY_SELECTION_REPRESENTATIVE,
        student_semi_supervised=pb.FedPateSpec.SEMI_SUPERVISED_LABEL_SPREADING, threshold=3.0, sigma_threshold=0.5)
    request = pb.CreateFederatedJobRequest(job=J(
        display_name="fedpate options", data=pb.FederatedData(dataset_id=dataset, seed=3, server_fraction=0.5),
        fedpate=spec))
    # Execute
    created = await stub.CreateFederatedJob(request, metadata=as_org(OWNER))
    events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=created.job_id),
                                                      metadata=as_org(OWNER))]
    # Assert: it ran with the options (the job echoes them) and succeeded
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    assert job.fedpate.query_selection == pb.FedPateSpec.QUERY_SELECTION_REPRESENTATIVE
    assert job.fedpate.student_semi_supervised == pb.FedPateSpec.SEMI_SUPERVISED_LABEL_SPREADING
    assert (job.fedpate.threshold, job.fedpate.sigma_threshold) == (3.0, 0.5)
    rounds = [e.round for e in events if e.HasField("round")]
    assert len(rounds) == 1 and rounds[0].accuracy >= 0.8, rounds
    # The privacy report: the data-independent guarantee as the headline (every query's threshold
    # check and GNMax answer counted), PATE's data-dependent figure beside it, from the run's votes.
    report = job.privacy
    votes = json.loads((core.job_dir(job.job_id) / "output" / "votes.json").read_text())
    assert len(votes["counts"]) == 20 and 1 <= sum(votes["answered"]) <= 20
    worst = privacy.fedpate_confident_gnmax(np.array(votes["counts"]), [True] * 20, sigma=0.5, threshold=3.0,
                                            sigma_threshold=0.5, delta=1e-5)
    dependent = privacy.fedpate_confident_gnmax(np.array(votes["counts"]), votes["answered"], sigma=0.5,
                                                threshold=3.0, sigma_threshold=0.5, delta=1e-5)
    assert report.formal_guarantee and report.mechanism == "confident GNMax (PATE)" and report.compositions == 20
    assert report.epsilon == pytest.approx(float(worst.parameters["data_independent_epsilon"]), rel=1e-4)
    assert float(report.parameters["data_dependent_epsilon"]) == pytest.approx(dependent.epsilon, rel=1e-5)
    assert float(report.parameters["data_dependent_delta"]) == 1e-5
    assert 0 < dependent.epsilon < report.epsilon
    assert "not sanitised" in report.parameters["data_dependent_accountant"]
    assert report.parameters["answered"] == str(sum(votes["answered"]))
    assert "not itself sanitised" in report.explanation and "data_dependent_note" not in report.parameters
    # The student's provenance in the Registry: the options and both figures
    record = json.loads(b"".join([c.data async for c in registry.DownloadModelRecipe(
        reg_pb.DownloadModelRecipeRequest(model_id=job.result_model_id), metadata=as_org(OWNER))]))
    asked = json.loads(record["request"])["spec"]
    assert (asked["query_selection"], asked["student_semi_supervised"], asked["teacher_semi_supervised"],
            asked["threshold"], asked["sigma_threshold"]) == ("representative", "label-spreading", "none", 3.0, 0.5)
    spent = json.loads(record["privacy"])
    assert spent["epsilon"] == pytest.approx(report.epsilon)
    assert float(spent["parameters"]["data_dependent_epsilon"]) == pytest.approx(dependent.epsilon, rel=1e-5)
    # The histograms themselves stay with the job: neither the report nor the provenance holds them
    assert "counts" not in json.dumps(record) and "counts" not in report.explanation
