"""The Registry's view of the Trainer: schedules training jobs over gRPC."""

from __future__ import annotations

import datetime as dt

from mlmesh.trainer.v1 import trainer_service_pb2 as trainer_pb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc

from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.registry.domain.ports import ReproductionInfo, TrainingJobInfo


def _time(message, field: str):
    return message.__getattribute__(field).ToDatetime(tzinfo=dt.UTC) if message.HasField(field) else None


def reproduction_from_proto(r: trainer_pb.Reproduction) -> ReproductionInfo:
    return ReproductionInfo(
        outcome=trainer_pb.Reproduction.Outcome.Name(r.outcome).removeprefix("OUTCOME_"),
        ledger_res_sha256=r.ledger_res_sha256, ledger_res_hash=r.ledger_res_hash,
        reproduced_sha256=r.reproduced_sha256, max_abs_diff=r.max_abs_diff, compared_samples=r.compared_samples,
        top1_agreement=r.top1_agreement, method=r.method)


def training_job_from_proto(job: trainer_pb.TrainingJob) -> TrainingJobInfo:
    return TrainingJobInfo(
        job_id=job.job_id, model_id=job.model_id, dataset_id=job.dataset_id,
        state=trainer_pb.TrainingJob.State.Name(job.state).removeprefix("STATE_"), executor=job.executor,
        framework=job.framework, failure_reason=job.failure_reason, create_time=_time(job, "create_time"),
        start_time=_time(job, "start_time"), end_time=_time(job, "end_time"),
        purpose="REPRODUCTION" if job.purpose == trainer_pb.PURPOSE_REPRODUCTION else "TRAINING",
        reproduction=reproduction_from_proto(job.reproduction) if job.HasField("reproduction") else None,
    )


class TrainerClient(PeerClient):
    """Implements the domain's Trainer and TrainingJobs ports."""

    def __init__(self, target: str, *, timeout: float = 30.0, tls: TlsSettings | None = None):
        super().__init__(target, "trainer", trainer_grpc.TrainerServiceStub, timeout=timeout, tls=tls)

    async def submit_training_job(self, *, model_id: str, time_limit_seconds: int, memory_limit_bytes: int) -> str:
        request = trainer_pb.SubmitTrainingJobRequest(
            model_id=model_id, time_limit_seconds=time_limit_seconds, memory_limit_bytes=memory_limit_bytes
        )
        return (await self.call(self._stub.SubmitTrainingJob, request)).job_id

    async def get_training_job(self, job_id: str, *, on_behalf_of: str | None) -> TrainingJobInfo:
        request = trainer_pb.GetTrainingJobRequest(job_id=job_id)
        return training_job_from_proto(await self.call(self._stub.GetTrainingJob, request, on_behalf_of=on_behalf_of))

    async def list_reproductions(self, model_id: str, *, on_behalf_of: str | None) -> list[TrainingJobInfo]:
        found, token = [], ""
        for _ in range(100):  # at most 100 pages of 1000 jobs
            page = await self.call(self._stub.ListTrainingJobs, trainer_pb.ListTrainingJobsRequest(
                model_id=model_id, page_size=1000, page_token=token), on_behalf_of=on_behalf_of)
            found.extend(training_job_from_proto(j) for j in page.training_jobs
                         if j.purpose == trainer_pb.PURPOSE_REPRODUCTION and j.state == trainer_pb.TrainingJob.STATE_SUCCEEDED
                         and j.HasField("reproduction"))
            token = page.next_page_token
            if not token:
                break
        return sorted(found, key=lambda j: (j.end_time or j.create_time or dt.datetime.min.replace(tzinfo=dt.UTC)))
