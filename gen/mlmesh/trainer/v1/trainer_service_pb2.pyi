from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.common.v1 import validation_pb2 as _validation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Purpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PURPOSE_UNSPECIFIED: _ClassVar[Purpose]
    PURPOSE_TRAINING: _ClassVar[Purpose]
    PURPOSE_REPRODUCTION: _ClassVar[Purpose]
PURPOSE_UNSPECIFIED: Purpose
PURPOSE_TRAINING: Purpose
PURPOSE_REPRODUCTION: Purpose

class TrainingJob(_message.Message):
    __slots__ = ("job_id", "model_id", "dataset_id", "state", "failure_reason", "executor", "time_limit_seconds", "memory_limit_bytes", "framework", "create_time", "start_time", "end_time", "purpose", "reproduction")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[TrainingJob.State]
        STATE_QUEUED: _ClassVar[TrainingJob.State]
        STATE_PRE_TRAINING: _ClassVar[TrainingJob.State]
        STATE_TRAINING: _ClassVar[TrainingJob.State]
        STATE_POST_TRAINING: _ClassVar[TrainingJob.State]
        STATE_SUCCEEDED: _ClassVar[TrainingJob.State]
        STATE_FAILED: _ClassVar[TrainingJob.State]
        STATE_CANCELLED: _ClassVar[TrainingJob.State]
    STATE_UNSPECIFIED: TrainingJob.State
    STATE_QUEUED: TrainingJob.State
    STATE_PRE_TRAINING: TrainingJob.State
    STATE_TRAINING: TrainingJob.State
    STATE_POST_TRAINING: TrainingJob.State
    STATE_SUCCEEDED: TrainingJob.State
    STATE_FAILED: TrainingJob.State
    STATE_CANCELLED: TrainingJob.State
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    REPRODUCTION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model_id: str
    dataset_id: str
    state: TrainingJob.State
    failure_reason: str
    executor: str
    time_limit_seconds: int
    memory_limit_bytes: int
    framework: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    purpose: Purpose
    reproduction: Reproduction
    def __init__(self, job_id: _Optional[str] = ..., model_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., state: _Optional[_Union[TrainingJob.State, str]] = ..., failure_reason: _Optional[str] = ..., executor: _Optional[str] = ..., time_limit_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., framework: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., purpose: _Optional[_Union[Purpose, str]] = ..., reproduction: _Optional[_Union[Reproduction, _Mapping]] = ...) -> None: ...

class Reproduction(_message.Message):
    __slots__ = ("outcome", "ledger_res_sha256", "ledger_res_hash", "reproduced_sha256", "max_abs_diff", "compared_samples", "top1_agreement", "method")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[Reproduction.Outcome]
        OUTCOME_IDENTICAL: _ClassVar[Reproduction.Outcome]
        OUTCOME_DIFFERENT: _ClassVar[Reproduction.Outcome]
    OUTCOME_UNSPECIFIED: Reproduction.Outcome
    OUTCOME_IDENTICAL: Reproduction.Outcome
    OUTCOME_DIFFERENT: Reproduction.Outcome
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LEDGER_RES_SHA256_FIELD_NUMBER: _ClassVar[int]
    LEDGER_RES_HASH_FIELD_NUMBER: _ClassVar[int]
    REPRODUCED_SHA256_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    COMPARED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TOP1_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    outcome: Reproduction.Outcome
    ledger_res_sha256: str
    ledger_res_hash: str
    reproduced_sha256: str
    max_abs_diff: float
    compared_samples: int
    top1_agreement: float
    method: str
    def __init__(self, outcome: _Optional[_Union[Reproduction.Outcome, str]] = ..., ledger_res_sha256: _Optional[str] = ..., ledger_res_hash: _Optional[str] = ..., reproduced_sha256: _Optional[str] = ..., max_abs_diff: _Optional[float] = ..., compared_samples: _Optional[int] = ..., top1_agreement: _Optional[float] = ..., method: _Optional[str] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("sequence", "time", "stream", "text")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    stream: str
    text: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., stream: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class TrainingJobEvent(_message.Message):
    __slots__ = ("job", "log")
    JOB_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    log: LogLine
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ..., log: _Optional[_Union[LogLine, _Mapping]] = ...) -> None: ...

class SubmitTrainingJobRequest(_message.Message):
    __slots__ = ("model_id", "time_limit_seconds", "memory_limit_bytes")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    time_limit_seconds: int
    memory_limit_bytes: int
    def __init__(self, model_id: _Optional[str] = ..., time_limit_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListTrainingJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "model_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    model_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class ListTrainingJobsResponse(_message.Message):
    __slots__ = ("training_jobs", "next_page_token")
    TRAINING_JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    training_jobs: _containers.RepeatedCompositeFieldContainer[TrainingJob]
    next_page_token: str
    def __init__(self, training_jobs: _Optional[_Iterable[_Union[TrainingJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTrainingJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchTrainingJobRequest(_message.Message):
    __slots__ = ("job_id", "after_log_sequence")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_LOG_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_log_sequence: int
    def __init__(self, job_id: _Optional[str] = ..., after_log_sequence: _Optional[int] = ...) -> None: ...

class ReproduceModelRequest(_message.Message):
    __slots__ = ("model_id", "time_limit_seconds", "memory_limit_bytes")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    time_limit_seconds: int
    memory_limit_bytes: int
    def __init__(self, model_id: _Optional[str] = ..., time_limit_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ...) -> None: ...
