"""NVIDIA FLARE FedAvg with homomorphic encryption (tenseal CKKS) through the real Federation server
(port 0, embedded PostgreSQL, our Registry on a real Ledger): FLARE 2.9's simulator in .venv-flare
runs 2 clients for 1 round with FLARE's own HE components (HEModelEncryptor/Decryptor on the
clients, HEInTimeAccumulateWeightedAggregator and HEModelShareableGenerator on the server) and
contexts made by FLARE's HEBuilder. Nothing is mocked.

That HE really ran is read from what the FLARE server itself printed into the job's log: each
client's result reached it as CKKS ciphertexts (counted on the result after FLARE's filters), the
global model it persisted is ciphertexts, and its context cannot decrypt them (tenseal's
`is_private()` on the context the server loaded). Without HE those lines are absent (the
persistor prints them only for an encrypted job, from the types it holds), and a wrong decryption
or weighting would show in the global accuracy, computed after decrypting with the clients' key.
The privacy report says HE is no differential privacy. Options FLARE cannot combine with HE are
refused before anything runs."""

from __future__ import annotations

import json
import math

import grpc
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb

from tests.fixtures.federation import blobs_csv
from tests.integration.test_federation import OWNER, J, as_org, expected_commitments, refused, upload
from tests.integration.test_federation_flare import (  # noqa: F401 (fixture)
    flare_federation,
    flare_job,
    registered_global_model,
)


async def test_flare_fedavg_with_homomorphic_encryption_runs_in_the_simulator_and_registers_the_model(
        flare_federation, tmp_path) -> None:  # noqa: F811
    stub, registry = flare_federation
    data = blobs_csv()
    (tmp_path / "data.csv").write_bytes(data)
    dataset = await upload(registry, OWNER, data)
    # Execute
    created = await stub.CreateFederatedJob(flare_job(dataset, homomorphic_encryption=True), metadata=as_org(OWNER))
    events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=created.job_id),
                                                      metadata=as_org(OWNER))]
    # Assert: the job ran its round and succeeded
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    assert job.flare.homomorphic_encryption and job.framework_version == "nvflare 2.9.0"
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1]
    assert sorted(c.client_id for c in rounds[0].clients) == ["site-1", "site-2"]
    assert all(c.num_examples == 84 for c in rounds[0].clients), rounds[0].clients
    # The global model aggregated under encryption, decrypted with the clients' key, is useful: a
    # mis-weighted sum (the clients multiply by their local steps before encrypting, the server
    # divides the encrypted sum) or a failed decryption would not classify the blobs.
    assert rounds[0].accuracy >= 0.9 and 0 < rounds[0].loss < 1, (rounds[0].accuracy, rounds[0].loss)
    assert rounds[0].seconds > 0
    # HE really ran: what the FLARE server received and holds, in its own words
    logs = [e.log.text for e in events if e.HasField("log")]
    for site in ("site-1", "site-2"):
        assert (f"{site}'s result reached the FLARE server encrypted: 6 of 6 layers are CKKS ciphertexts "
                "(algorithm CKKS)") in logs, [t for t in logs if "encrypt" in t]
    assert ("the FLARE server's global model after round 1: 6 of 6 layers are CKKS ciphertexts; the server's HE "
            "context can decrypt them: False") in logs
    assert any(t.startswith("round 1: the global model decrypted with the clients' key: accuracy") for t in logs)
    # Privacy: encryption is reported as what it is, not as differential privacy
    for report in (job.privacy, rounds[0].privacy):
        assert not report.formal_guarantee and math.isinf(report.epsilon)
        assert "homomorphic encryption" in report.mechanism
        assert "not differential privacy" in report.explanation and "no (epsilon, delta)" in report.explanation
    got = sorted((c.sha256, c.sample_count) for c in job.client_commitments)
    assert got == sorted(expected_commitments(tmp_path / "data.csv", 2, 0.3, 3))
    # The decrypted global model: registered, anchored, downloadable, with its provenance
    _model, record = await registered_global_model(registry, job, dataset)
    assert json.loads(record["request"])["spec"]["homomorphic_encryption"] is True
    assert json.loads(record["privacy"])["formal_guarantee"] is False


@pytest.mark.parametrize("privacy_filter", [pb.FlareSpec.PRIVACY_FILTER_SVT, pb.FlareSpec.PRIVACY_FILTER_PERCENTILE])
async def test_homomorphic_encryption_with_a_dp_filter_is_refused_naming_the_field(
        flare_federation, privacy_filter) -> None:  # noqa: F811
    stub, registry = flare_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    extra = {"svt_epsilon": 1.0} if privacy_filter == pb.FlareSpec.PRIVACY_FILTER_SVT else {}
    # Execute
    err = await refused(stub.CreateFederatedJob, flare_job(dataset, homomorphic_encryption=True,
                                                           privacy_filter=privacy_filter, **extra))
    # Assert
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert err.details().startswith("flare.homomorphic_encryption: cannot be combined with privacy_filter")
    listed = await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(), metadata=as_org(OWNER))
    assert list(listed.federated_jobs) == []


async def test_homomorphic_encryption_in_real_mode_is_refused_as_not_built(flare_federation) -> None:  # noqa: F811
    stub, registry = flare_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    request = flare_job(dataset, homomorphic_encryption=True)
    request.job.mode = J.MODE_REAL
    # Execute
    err = await refused(stub.CreateFederatedJob, request)
    # Assert
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    assert err.details().startswith("flare.homomorphic_encryption:") and "MODE_REAL" in err.details()
