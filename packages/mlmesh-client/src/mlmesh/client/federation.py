"""`client.federation`: federated jobs (the Federation server), present when the Federation
contract is in this build's stubs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from mlmesh.client._base import _Service, rpc
from mlmesh.client._transport import Destination, Progress
from mlmesh.federation.v1 import federation_service_pb2 as fpb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fgrpc

FEDERATION = "mlmesh.federation.v1.FederationService"


def _parsed(cls, value):
    """A message of `cls` from a message or a dict in its JSON form (field names as in the proto)."""
    if isinstance(value, cls):
        return value
    return json_format.ParseDict(dict(value), cls())


class Federation(_Service):
    """Federated jobs (the Federation server): Flower FedPATE, TensorFlow Federated and NVIDIA FLARE
    behind one API, with privacy accounting; the final model lands in the Registry."""

    _stub_class = fgrpc.FederationServiceStub

    @rpc(f"{FEDERATION}/CreateFederatedJob")
    def create(self, job: Mapping[str, Any] | fpb.FederatedJob, *, organization_id: str | None = None,
               developer_id: str | None = None, timeout: float | None = None):
        """Starts a federated job: a FederatedJob message or its JSON form as a dict, e.g.
        `{"display_name": "digits", "data": {"dataset_id": ...}, "fedpate": {...}}`."""
        job = _parsed(fpb.FederatedJob, job)
        job.organization_id = job.organization_id or self._id.organization(organization_id)
        job.developer_id = job.developer_id or self._id.developer(developer_id)
        return self._t.unary(self._stub.CreateFederatedJob, fpb.CreateFederatedJobRequest(job=job),
                             timeout=self._deadline(timeout, "slow"))

    @rpc(f"{FEDERATION}/GetFederatedJob")
    def get(self, job_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.GetFederatedJob, fpb.GetFederatedJobRequest(job_id=job_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{FEDERATION}/ListFederatedJobs")
    def list(self, *, framework: str = "", page_size: int = 100, timeout: float | None = None):
        """The caller's federated jobs, newest first (`framework`: "fp", "tff" or "nv" only)."""
        return self._t.pages(
            self._stub.ListFederatedJobs,
            lambda token: fpb.ListFederatedJobsRequest(framework=framework, page_size=page_size, page_token=token),
            "federated_jobs", timeout=self._deadline(timeout))

    @rpc(f"{FEDERATION}/CancelFederatedJob")
    def cancel(self, job_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.CancelFederatedJob, fpb.CancelFederatedJobRequest(job_id=job_id),
                             timeout=self._deadline(timeout))

    @rpc(f"{FEDERATION}/DeleteFederatedJob")
    def delete(self, job_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.DeleteFederatedJob, fpb.DeleteFederatedJobRequest(job_id=job_id),
                             timeout=self._deadline(timeout))

    @rpc(f"{FEDERATION}/WatchFederatedJob")
    def watch(self, job_id: str, *, after_log_sequence: int = 0, timeout: float | None = None):
        """FederatedJobEvents (job state, per-round metrics, log lines) until the job ends."""
        return self._t.server_stream(
            self._stub.WatchFederatedJob,
            fpb.WatchFederatedJobRequest(job_id=job_id, after_log_sequence=after_log_sequence),
            timeout=self._deadline(timeout, "watch"))

    @rpc(f"{FEDERATION}/CreateFlareServer")
    def create_flare_server(self, flare_server: Mapping[str, Any] | fpb.FlareServer, *,
                            organization_id: str | None = None, timeout: float | None = None):
        """Provisions and starts an NVIDIA FLARE server for real (non-simulated) FLARE jobs."""
        server = _parsed(fpb.FlareServer, flare_server)
        server.organization_id = server.organization_id or self._id.organization(organization_id)
        return self._t.unary(self._stub.CreateFlareServer, fpb.CreateFlareServerRequest(flare_server=server),
                             timeout=self._deadline(timeout, "slow"))

    @rpc(f"{FEDERATION}/GetFlareServer")
    def get_flare_server(self, flare_server_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.GetFlareServer, fpb.GetFlareServerRequest(flare_server_id=flare_server_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{FEDERATION}/ListFlareServers")
    def list_flare_servers(self, *, page_size: int = 100, timeout: float | None = None):
        return self._t.pages(
            self._stub.ListFlareServers,
            lambda token: fpb.ListFlareServersRequest(page_size=page_size, page_token=token),
            "flare_servers", timeout=self._deadline(timeout))

    @rpc(f"{FEDERATION}/DeleteFlareServer")
    def delete_flare_server(self, flare_server_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.DeleteFlareServer,
                             fpb.DeleteFlareServerRequest(flare_server_id=flare_server_id),
                             timeout=self._deadline(timeout))

    @rpc(f"{FEDERATION}/DownloadFlareStartupKit")
    def download_startup_kit(self, flare_server_id: str, client_name: str, dest: Destination, *,
                             progress: Progress | None = None, timeout: float | None = None):
        """Saves a FLARE client's startup kit (an archive) to a path or binary file object."""
        return self._t.save(self._stub.DownloadFlareStartupKit,
                            fpb.DownloadFlareStartupKitRequest(flare_server_id=flare_server_id, client_name=client_name),
                            dest, timeout=self._deadline(timeout, "transfer"), progress=progress)

    @rpc(f"{FEDERATION}/DownloadFlowerRootCertificates")
    def download_root_certificates(self, job_id: str, dest: Destination, *, progress: Progress | None = None,
                                   timeout: float | None = None):
        """Saves a real-mode FedPATE job's CA certificate (PEM), which its client owners' SuperNodes
        trust (`flower-supernode --root-certificates`), to a path or binary file object."""
        return self._t.save(self._stub.DownloadFlowerRootCertificates,
                            fpb.DownloadFlowerRootCertificatesRequest(job_id=job_id), dest,
                            timeout=self._deadline(timeout, "transfer"), progress=progress)
