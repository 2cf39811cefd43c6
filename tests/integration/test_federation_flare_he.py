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
refused before anything runs. In real mode the same runs on a provisioned FLARE server whose kits
carry FLARE's HE contexts, with clients started from their downloaded kits."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb

from tests.fixtures.federation import blobs_csv
from tests.integration.test_federation import OWNER, J, as_org, expected_commitments, refused, upload
from tests.integration.test_federation_flare import (  # noqa: F401 (fixture)
    FLARE_PYTHON,
    flare_federation,
    flare_job,
    registered_global_model,
)
from tests.integration.test_federation_flare_real import download_kit, real_job
from tests.integration.test_federation_flare_server import clients_seen, start_client

S = pb.FlareServer


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



async def test_a_real_mode_flare_job_with_homomorphic_encryption_uses_the_kits_contexts(
        flare_federation, tmp_path) -> None:  # noqa: F811
    """Real mode: the provisioned kits carry FLARE's HE contexts (HEBuilder, signed): the server's
    without the secret key, each client's with it; the clients started from their downloaded kits
    encrypt, the FLARE server aggregates ciphertexts, the model is decrypted and registered."""
    stub, registry = flare_federation
    dataset = await upload(registry, OWNER, blobs_csv(rows=90, seed=5))
    local = {"site-1": tmp_path / "site-1-data.csv", "site-2": tmp_path / "site-2-data.csv"}
    local["site-1"].write_bytes(blobs_csv(rows=70, seed=5))
    local["site-2"].write_bytes(blobs_csv(rows=50, seed=5))
    server = await stub.CreateFlareServer(pb.CreateFlareServerRequest(
        flare_server=S(project_name="he", client_names=["site-1", "site-2"])), metadata=as_org(OWNER))
    assert server.state == S.STATE_RUNNING, server.failure_reason
    server_dir = tmp_path / "fed" / "federation" / "flare-servers" / server.flare_server_id
    admin_kit = next(server_dir.rglob("admin@mlmesh.local"))
    # The kits' contexts: the server's cannot decrypt, a client's can; both are signed
    server_startup = admin_kit.parent / "localhost" / "startup"
    assert (server_startup / "server_context.tenseal").exists()
    assert not (server_startup / "client_context.tenseal").exists()
    assert "server_context.tenseal" in json.loads((server_startup / "signature.json").read_text())
    clients = []
    try:
        for name in server.client_names:
            kit = await download_kit(stub, server.flare_server_id, name, tmp_path / "kits")
            assert (kit / "startup" / "client_context.tenseal").exists()
            assert "client_context.tenseal" in json.loads((kit / "startup" / "signature.json").read_text())
            clients.append(start_client(kit, name, tmp_path, data=local[name]))
        assert private(server_startup / "server_context.tenseal", tmp_path) is False
        assert private(tmp_path / "kits" / "site-1" / "startup" / "client_context.tenseal", tmp_path) is True
        deadline = time.monotonic() + 120
        while clients_seen(admin_kit, tmp_path) != ["site-1", "site-2"]:
            assert time.monotonic() < deadline, "the clients did not join"
            await asyncio.sleep(2)
        # Execute
        created = await stub.CreateFederatedJob(real_job(dataset, server.flare_server_id, homomorphic_encryption=True),
                                                metadata=as_org(OWNER))
        events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=created.job_id),
                                                          metadata=as_org(OWNER))]
        # Assert: succeeded on the FLARE server, encrypted all the way, decrypted only by the key holder
        job = events[-1].job
        assert job.state == J.STATE_SUCCEEDED, job.failure_reason
        assert job.mode == J.MODE_REAL and job.flare.homomorphic_encryption
        logs = [e.log.text for e in events if e.HasField("log")]
        assert any(line.endswith(": FINISHED:COMPLETED") for line in logs), logs[-20:]
        for site in ("site-1", "site-2"):
            assert (f"{site}'s result reached the FLARE server encrypted: 6 of 6 layers are CKKS ciphertexts "
                    "(algorithm CKKS)") in logs, [t for t in logs if "encrypt" in t]
        assert ("the FLARE server's global model after round 1: 6 of 6 layers are CKKS ciphertexts; the server's HE "
                "context can decrypt them: False") in logs
        rounds = [e.round for e in events if e.HasField("round")]
        assert [r.round for r in rounds] == [1]
        assert sorted((c.client_id, c.num_examples) for c in rounds[0].clients) == [("site-1", 70), ("site-2", 50)]
        assert rounds[0].accuracy >= 0.9, rounds[0].accuracy
        assert not job.privacy.formal_guarantee and "not differential privacy" in job.privacy.explanation
        _model, record = await registered_global_model(registry, job, dataset)
        assert json.loads(record["request"])["mode"] == "real"
    finally:
        for proc in clients:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def private(context: Path, home: Path) -> bool:
    """tenseal's own answer: does this serialized context hold the secret key?"""
    out = subprocess.run([str(FLARE_PYTHON), "-c", "import sys, tenseal; print(tenseal.context_from(open(sys.argv[1], "
                          "'rb').read()).is_private())", str(context)], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return {"True": True, "False": False}[out.stdout.strip()]
