"""proto <-> domain for the Trainer. Pure functions, in pairs (round-trip tested)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from mlmesh.trainer.v1 import trainer_service_pb2 as pb

from servers.common import timestamps
from servers.trainer.domain import jobs as J
from servers.trainer.domain.jobs import Job, LogLine, Reproduction

_STATE_TO_PROTO = {
    J.QUEUED: pb.TrainingJob.STATE_QUEUED,
    J.PRE_TRAINING: pb.TrainingJob.STATE_PRE_TRAINING,
    J.TRAINING: pb.TrainingJob.STATE_TRAINING,
    J.POST_TRAINING: pb.TrainingJob.STATE_POST_TRAINING,
    J.SUCCEEDED: pb.TrainingJob.STATE_SUCCEEDED,
    J.FAILED: pb.TrainingJob.STATE_FAILED,
    J.CANCELLED: pb.TrainingJob.STATE_CANCELLED,
}
_STATE_FROM_PROTO = {v: k for k, v in _STATE_TO_PROTO.items()}


def state_to_proto(state: str) -> int:
    return _STATE_TO_PROTO[state]


def state_from_proto(value: int) -> str:
    try:
        return _STATE_FROM_PROTO[value]
    except KeyError:
        raise ValueError(f"unknown training job state {value}") from None


def timestamp_to_proto(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """Optional timestamps (a job that has not started has no start_time)."""
    return None if value is None else timestamps.timestamp_to_proto(value)


def timestamp_from_proto(ts: timestamp_pb2.Timestamp, present: bool = True) -> dt.datetime | None:
    return timestamps.timestamp_from_proto(ts) if present else None


_PURPOSE_TO_PROTO = {J.TRAINING_PURPOSE: pb.PURPOSE_TRAINING, J.REPRODUCTION: pb.PURPOSE_REPRODUCTION}
_PURPOSE_FROM_PROTO = {v: k for k, v in _PURPOSE_TO_PROTO.items()} | {pb.PURPOSE_UNSPECIFIED: J.TRAINING_PURPOSE}
_OUTCOME_TO_PROTO = {J.IDENTICAL: pb.Reproduction.OUTCOME_IDENTICAL, J.DIFFERENT: pb.Reproduction.OUTCOME_DIFFERENT}
_OUTCOME_FROM_PROTO = {v: k for k, v in _OUTCOME_TO_PROTO.items()}


def reproduction_to_proto(r: Reproduction) -> pb.Reproduction:
    return pb.Reproduction(
        outcome=_OUTCOME_TO_PROTO[r.outcome], ledger_res_sha256=r.ledger_res_sha256, ledger_res_hash=r.ledger_res_hash,
        reproduced_sha256=r.reproduced_sha256, max_abs_diff=r.max_abs_diff, compared_samples=r.compared_samples,
        top1_agreement=r.top1_agreement, method=r.method)


def reproduction_from_proto(p: pb.Reproduction) -> Reproduction:
    return Reproduction(
        outcome=_OUTCOME_FROM_PROTO[p.outcome], ledger_res_sha256=p.ledger_res_sha256, ledger_res_hash=p.ledger_res_hash,
        reproduced_sha256=p.reproduced_sha256, max_abs_diff=p.max_abs_diff, compared_samples=p.compared_samples,
        top1_agreement=p.top1_agreement, method=p.method)


def job_to_proto(job: Job) -> pb.TrainingJob:
    return pb.TrainingJob(
        job_id=job.job_id, model_id=job.model_id, dataset_id=job.dataset_id, state=state_to_proto(job.state),
        failure_reason=job.failure_reason, executor=job.executor, time_limit_seconds=job.time_limit_seconds,
        memory_limit_bytes=job.memory_limit_bytes, framework=job.framework,
        create_time=timestamp_to_proto(job.create_time), start_time=timestamp_to_proto(job.start_time),
        end_time=timestamp_to_proto(job.end_time), purpose=_PURPOSE_TO_PROTO[job.purpose],
        reproduction=reproduction_to_proto(job.reproduction) if job.reproduction is not None else None,
    )


def job_from_proto(p: pb.TrainingJob) -> Job:
    return Job(
        job_id=p.job_id, model_id=p.model_id, dataset_id=p.dataset_id, state=state_from_proto(p.state),
        failure_reason=p.failure_reason, executor=p.executor, time_limit_seconds=p.time_limit_seconds,
        memory_limit_bytes=p.memory_limit_bytes, framework=p.framework,
        create_time=timestamp_from_proto(p.create_time),
        start_time=timestamp_from_proto(p.start_time, p.HasField("start_time")),
        end_time=timestamp_from_proto(p.end_time, p.HasField("end_time")),
        purpose=_PURPOSE_FROM_PROTO[p.purpose],
        reproduction=reproduction_from_proto(p.reproduction) if p.HasField("reproduction") else None,
    )


def log_line_to_proto(line: LogLine) -> pb.LogLine:
    return pb.LogLine(sequence=line.sequence, time=timestamp_to_proto(line.time), stream=line.stream, text=line.text)


def log_line_from_proto(p: pb.LogLine) -> LogLine:
    return LogLine(sequence=p.sequence, time=timestamp_from_proto(p.time), stream=p.stream, text=p.text)


def event_to_proto(event: Job | LogLine) -> pb.TrainingJobEvent:
    if isinstance(event, LogLine):
        return pb.TrainingJobEvent(log=log_line_to_proto(event))
    return pb.TrainingJobEvent(job=job_to_proto(event))


def event_from_proto(p: pb.TrainingJobEvent) -> Job | LogLine:
    kind = p.WhichOneof("event")
    if kind == "log":
        return log_line_from_proto(p.log)
    if kind == "job":
        return job_from_proto(p.job)
    raise ValueError("empty training job event")


def submit_request_from_proto(p: pb.SubmitTrainingJobRequest) -> tuple[str, int, int]:
    return p.model_id, p.time_limit_seconds, p.memory_limit_bytes


def reproduce_request_from_proto(p: pb.ReproduceModelRequest) -> tuple[str, int, int]:
    return p.model_id, p.time_limit_seconds, p.memory_limit_bytes


def reproduce_request_to_proto(model_id: str, time_limit_seconds: int, memory_limit_bytes: int
                               ) -> pb.ReproduceModelRequest:
    return pb.ReproduceModelRequest(model_id=model_id, time_limit_seconds=time_limit_seconds,
                                    memory_limit_bytes=memory_limit_bytes)


def submit_request_to_proto(model_id: str, time_limit_seconds: int, memory_limit_bytes: int
                            ) -> pb.SubmitTrainingJobRequest:
    return pb.SubmitTrainingJobRequest(model_id=model_id, time_limit_seconds=time_limit_seconds,
                                       memory_limit_bytes=memory_limit_bytes)
