from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.common.v1 import validation_pb2 as _validation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FederatedJob(_message.Message):
    __slots__ = ("job_id", "display_name", "organization_id", "developer_id", "mode", "data", "fedpate", "tff", "flare", "state", "failure_reason", "framework_version", "executor", "time_limit_seconds", "memory_limit_bytes", "rounds", "privacy", "client_commitments", "result_model_id", "create_time", "start_time", "end_time", "flower_join")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[FederatedJob.State]
        STATE_QUEUED: _ClassVar[FederatedJob.State]
        STATE_PREPARING: _ClassVar[FederatedJob.State]
        STATE_RUNNING: _ClassVar[FederatedJob.State]
        STATE_REGISTERING: _ClassVar[FederatedJob.State]
        STATE_SUCCEEDED: _ClassVar[FederatedJob.State]
        STATE_FAILED: _ClassVar[FederatedJob.State]
        STATE_CANCELLED: _ClassVar[FederatedJob.State]
    STATE_UNSPECIFIED: FederatedJob.State
    STATE_QUEUED: FederatedJob.State
    STATE_PREPARING: FederatedJob.State
    STATE_RUNNING: FederatedJob.State
    STATE_REGISTERING: FederatedJob.State
    STATE_SUCCEEDED: FederatedJob.State
    STATE_FAILED: FederatedJob.State
    STATE_CANCELLED: FederatedJob.State
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[FederatedJob.Mode]
        MODE_SIMULATION: _ClassVar[FederatedJob.Mode]
        MODE_REAL: _ClassVar[FederatedJob.Mode]
    MODE_UNSPECIFIED: FederatedJob.Mode
    MODE_SIMULATION: FederatedJob.Mode
    MODE_REAL: FederatedJob.Mode
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FEDPATE_FIELD_NUMBER: _ClassVar[int]
    TFF_FIELD_NUMBER: _ClassVar[int]
    FLARE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_COMMITMENTS_FIELD_NUMBER: _ClassVar[int]
    RESULT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    FLOWER_JOIN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    display_name: str
    organization_id: str
    developer_id: str
    mode: FederatedJob.Mode
    data: FederatedData
    fedpate: FedPateSpec
    tff: TffSpec
    flare: FlareSpec
    state: FederatedJob.State
    failure_reason: str
    framework_version: str
    executor: str
    time_limit_seconds: int
    memory_limit_bytes: int
    rounds: _containers.RepeatedCompositeFieldContainer[RoundMetrics]
    privacy: PrivacyReport
    client_commitments: _containers.RepeatedCompositeFieldContainer[ClientDataCommitment]
    result_model_id: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    flower_join: FlowerJoin
    def __init__(self, job_id: _Optional[str] = ..., display_name: _Optional[str] = ..., organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., mode: _Optional[_Union[FederatedJob.Mode, str]] = ..., data: _Optional[_Union[FederatedData, _Mapping]] = ..., fedpate: _Optional[_Union[FedPateSpec, _Mapping]] = ..., tff: _Optional[_Union[TffSpec, _Mapping]] = ..., flare: _Optional[_Union[FlareSpec, _Mapping]] = ..., state: _Optional[_Union[FederatedJob.State, str]] = ..., failure_reason: _Optional[str] = ..., framework_version: _Optional[str] = ..., executor: _Optional[str] = ..., time_limit_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., rounds: _Optional[_Iterable[_Union[RoundMetrics, _Mapping]]] = ..., privacy: _Optional[_Union[PrivacyReport, _Mapping]] = ..., client_commitments: _Optional[_Iterable[_Union[ClientDataCommitment, _Mapping]]] = ..., result_model_id: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., flower_join: _Optional[_Union[FlowerJoin, _Mapping]] = ...) -> None: ...

class FlowerJoin(_message.Message):
    __slots__ = ("superlink_address", "supernodes_expected", "teachers_per_node", "root_certificates_sha256", "join_deadline", "supernode_command", "supernodes_joined", "supernode_auth")
    SUPERLINK_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SUPERNODES_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    TEACHERS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    ROOT_CERTIFICATES_SHA256_FIELD_NUMBER: _ClassVar[int]
    JOIN_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SUPERNODE_COMMAND_FIELD_NUMBER: _ClassVar[int]
    SUPERNODES_JOINED_FIELD_NUMBER: _ClassVar[int]
    SUPERNODE_AUTH_FIELD_NUMBER: _ClassVar[int]
    superlink_address: str
    supernodes_expected: int
    teachers_per_node: int
    root_certificates_sha256: str
    join_deadline: _timestamp_pb2.Timestamp
    supernode_command: str
    supernodes_joined: int
    supernode_auth: bool
    def __init__(self, superlink_address: _Optional[str] = ..., supernodes_expected: _Optional[int] = ..., teachers_per_node: _Optional[int] = ..., root_certificates_sha256: _Optional[str] = ..., join_deadline: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., supernode_command: _Optional[str] = ..., supernodes_joined: _Optional[int] = ..., supernode_auth: bool = ...) -> None: ...

class FederatedData(_message.Message):
    __slots__ = ("dataset_id", "target_column", "partition", "dirichlet_alpha", "server_fraction", "seed")
    class Partition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PARTITION_UNSPECIFIED: _ClassVar[FederatedData.Partition]
        PARTITION_IID: _ClassVar[FederatedData.Partition]
        PARTITION_DIRICHLET: _ClassVar[FederatedData.Partition]
    PARTITION_UNSPECIFIED: FederatedData.Partition
    PARTITION_IID: FederatedData.Partition
    PARTITION_DIRICHLET: FederatedData.Partition
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_COLUMN_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    DIRICHLET_ALPHA_FIELD_NUMBER: _ClassVar[int]
    SERVER_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    target_column: str
    partition: FederatedData.Partition
    dirichlet_alpha: float
    server_fraction: float
    seed: int
    def __init__(self, dataset_id: _Optional[str] = ..., target_column: _Optional[str] = ..., partition: _Optional[_Union[FederatedData.Partition, str]] = ..., dirichlet_alpha: _Optional[float] = ..., server_fraction: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class FedPateSpec(_message.Message):
    __slots__ = ("net_name", "num_rounds", "num_teachers", "teacher_epochs", "student_epochs", "batch_size", "learning_rate", "noise", "epsilon", "sigma", "num_queries", "noise_data", "delta", "teachers_per_node", "supernode_public_keys", "query_selection", "teacher_semi_supervised", "student_semi_supervised", "threshold", "sigma_threshold")
    class Noise(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NOISE_UNSPECIFIED: _ClassVar[FedPateSpec.Noise]
        NOISE_LAPLACIAN: _ClassVar[FedPateSpec.Noise]
        NOISE_GAUSSIAN: _ClassVar[FedPateSpec.Noise]
    NOISE_UNSPECIFIED: FedPateSpec.Noise
    NOISE_LAPLACIAN: FedPateSpec.Noise
    NOISE_GAUSSIAN: FedPateSpec.Noise
    class QuerySelection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        QUERY_SELECTION_UNSPECIFIED: _ClassVar[FedPateSpec.QuerySelection]
        QUERY_SELECTION_FIRST: _ClassVar[FedPateSpec.QuerySelection]
        QUERY_SELECTION_REPRESENTATIVE: _ClassVar[FedPateSpec.QuerySelection]
    QUERY_SELECTION_UNSPECIFIED: FedPateSpec.QuerySelection
    QUERY_SELECTION_FIRST: FedPateSpec.QuerySelection
    QUERY_SELECTION_REPRESENTATIVE: FedPateSpec.QuerySelection
    class SemiSupervised(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SEMI_SUPERVISED_UNSPECIFIED: _ClassVar[FedPateSpec.SemiSupervised]
        SEMI_SUPERVISED_NONE: _ClassVar[FedPateSpec.SemiSupervised]
        SEMI_SUPERVISED_LABEL_SPREADING: _ClassVar[FedPateSpec.SemiSupervised]
    SEMI_SUPERVISED_UNSPECIFIED: FedPateSpec.SemiSupervised
    SEMI_SUPERVISED_NONE: FedPateSpec.SemiSupervised
    SEMI_SUPERVISED_LABEL_SPREADING: FedPateSpec.SemiSupervised
    NET_NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    NUM_TEACHERS_FIELD_NUMBER: _ClassVar[int]
    TEACHER_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STUDENT_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    NUM_QUERIES_FIELD_NUMBER: _ClassVar[int]
    NOISE_DATA_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TEACHERS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    SUPERNODE_PUBLIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    QUERY_SELECTION_FIELD_NUMBER: _ClassVar[int]
    TEACHER_SEMI_SUPERVISED_FIELD_NUMBER: _ClassVar[int]
    STUDENT_SEMI_SUPERVISED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SIGMA_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    net_name: str
    num_rounds: int
    num_teachers: int
    teacher_epochs: int
    student_epochs: int
    batch_size: int
    learning_rate: float
    noise: FedPateSpec.Noise
    epsilon: float
    sigma: float
    num_queries: int
    noise_data: int
    delta: float
    teachers_per_node: int
    supernode_public_keys: _containers.RepeatedScalarFieldContainer[str]
    query_selection: FedPateSpec.QuerySelection
    teacher_semi_supervised: FedPateSpec.SemiSupervised
    student_semi_supervised: FedPateSpec.SemiSupervised
    threshold: float
    sigma_threshold: float
    def __init__(self, net_name: _Optional[str] = ..., num_rounds: _Optional[int] = ..., num_teachers: _Optional[int] = ..., teacher_epochs: _Optional[int] = ..., student_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., noise: _Optional[_Union[FedPateSpec.Noise, str]] = ..., epsilon: _Optional[float] = ..., sigma: _Optional[float] = ..., num_queries: _Optional[int] = ..., noise_data: _Optional[int] = ..., delta: _Optional[float] = ..., teachers_per_node: _Optional[int] = ..., supernode_public_keys: _Optional[_Iterable[str]] = ..., query_selection: _Optional[_Union[FedPateSpec.QuerySelection, str]] = ..., teacher_semi_supervised: _Optional[_Union[FedPateSpec.SemiSupervised, str]] = ..., student_semi_supervised: _Optional[_Union[FedPateSpec.SemiSupervised, str]] = ..., threshold: _Optional[float] = ..., sigma_threshold: _Optional[float] = ...) -> None: ...

class TffSpec(_message.Message):
    __slots__ = ("imb_parameter", "dp_parameter", "n_clients", "n_samples", "target_label", "num_rounds", "epochs", "batch_size", "clients_per_round", "clip_norm", "delta")
    IMB_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    DP_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    N_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TARGET_LABEL_FIELD_NUMBER: _ClassVar[int]
    NUM_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_PER_ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIP_NORM_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    imb_parameter: float
    dp_parameter: float
    n_clients: int
    n_samples: int
    target_label: str
    num_rounds: int
    epochs: int
    batch_size: int
    clients_per_round: int
    clip_norm: float
    delta: float
    def __init__(self, imb_parameter: _Optional[float] = ..., dp_parameter: _Optional[float] = ..., n_clients: _Optional[int] = ..., n_samples: _Optional[int] = ..., target_label: _Optional[str] = ..., num_rounds: _Optional[int] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., clients_per_round: _Optional[int] = ..., clip_norm: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class FlareSpec(_message.Message):
    __slots__ = ("epochs", "batch_size", "num_clients", "num_rounds", "learning_rate", "privacy_filter", "svt_epsilon", "homomorphic_encryption", "flare_server_id")
    class PrivacyFilter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PRIVACY_FILTER_UNSPECIFIED: _ClassVar[FlareSpec.PrivacyFilter]
        PRIVACY_FILTER_NONE: _ClassVar[FlareSpec.PrivacyFilter]
        PRIVACY_FILTER_SVT: _ClassVar[FlareSpec.PrivacyFilter]
        PRIVACY_FILTER_PERCENTILE: _ClassVar[FlareSpec.PrivacyFilter]
    PRIVACY_FILTER_UNSPECIFIED: FlareSpec.PrivacyFilter
    PRIVACY_FILTER_NONE: FlareSpec.PrivacyFilter
    PRIVACY_FILTER_SVT: FlareSpec.PrivacyFilter
    PRIVACY_FILTER_PERCENTILE: FlareSpec.PrivacyFilter
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NUM_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FILTER_FIELD_NUMBER: _ClassVar[int]
    SVT_EPSILON_FIELD_NUMBER: _ClassVar[int]
    HOMOMORPHIC_ENCRYPTION_FIELD_NUMBER: _ClassVar[int]
    FLARE_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    batch_size: int
    num_clients: int
    num_rounds: int
    learning_rate: float
    privacy_filter: FlareSpec.PrivacyFilter
    svt_epsilon: float
    homomorphic_encryption: bool
    flare_server_id: str
    def __init__(self, epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., num_clients: _Optional[int] = ..., num_rounds: _Optional[int] = ..., learning_rate: _Optional[float] = ..., privacy_filter: _Optional[_Union[FlareSpec.PrivacyFilter, str]] = ..., svt_epsilon: _Optional[float] = ..., homomorphic_encryption: bool = ..., flare_server_id: _Optional[str] = ...) -> None: ...

class RoundMetrics(_message.Message):
    __slots__ = ("round", "clients", "loss", "accuracy", "privacy", "seconds")
    class ClientMetrics(_message.Message):
        __slots__ = ("client_id", "loss", "accuracy", "num_examples")
        CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
        LOSS_FIELD_NUMBER: _ClassVar[int]
        ACCURACY_FIELD_NUMBER: _ClassVar[int]
        NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
        client_id: str
        loss: float
        accuracy: float
        num_examples: int
        def __init__(self, client_id: _Optional[str] = ..., loss: _Optional[float] = ..., accuracy: _Optional[float] = ..., num_examples: _Optional[int] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    round: int
    clients: _containers.RepeatedCompositeFieldContainer[RoundMetrics.ClientMetrics]
    loss: float
    accuracy: float
    privacy: PrivacyReport
    seconds: float
    def __init__(self, round: _Optional[int] = ..., clients: _Optional[_Iterable[_Union[RoundMetrics.ClientMetrics, _Mapping]]] = ..., loss: _Optional[float] = ..., accuracy: _Optional[float] = ..., privacy: _Optional[_Union[PrivacyReport, _Mapping]] = ..., seconds: _Optional[float] = ...) -> None: ...

class PrivacyReport(_message.Message):
    __slots__ = ("formal_guarantee", "epsilon", "delta", "mechanism", "accountant", "compositions", "parameters", "explanation")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FORMAL_GUARANTEE_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTANT_FIELD_NUMBER: _ClassVar[int]
    COMPOSITIONS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    formal_guarantee: bool
    epsilon: float
    delta: float
    mechanism: str
    accountant: str
    compositions: int
    parameters: _containers.ScalarMap[str, str]
    explanation: str
    def __init__(self, formal_guarantee: bool = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., mechanism: _Optional[str] = ..., accountant: _Optional[str] = ..., compositions: _Optional[int] = ..., parameters: _Optional[_Mapping[str, str]] = ..., explanation: _Optional[str] = ...) -> None: ...

class ClientDataCommitment(_message.Message):
    __slots__ = ("client_id", "sha256", "sample_count")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    sha256: str
    sample_count: int
    def __init__(self, client_id: _Optional[str] = ..., sha256: _Optional[str] = ..., sample_count: _Optional[int] = ...) -> None: ...

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

class FederatedJobEvent(_message.Message):
    __slots__ = ("job", "round", "log")
    JOB_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    job: FederatedJob
    round: RoundMetrics
    log: LogLine
    def __init__(self, job: _Optional[_Union[FederatedJob, _Mapping]] = ..., round: _Optional[_Union[RoundMetrics, _Mapping]] = ..., log: _Optional[_Union[LogLine, _Mapping]] = ...) -> None: ...

class FlareServer(_message.Message):
    __slots__ = ("flare_server_id", "organization_id", "project_name", "client_names", "state", "failure_reason", "address", "create_time", "stop_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[FlareServer.State]
        STATE_STARTING: _ClassVar[FlareServer.State]
        STATE_RUNNING: _ClassVar[FlareServer.State]
        STATE_STOPPED: _ClassVar[FlareServer.State]
        STATE_FAILED: _ClassVar[FlareServer.State]
    STATE_UNSPECIFIED: FlareServer.State
    STATE_STARTING: FlareServer.State
    STATE_RUNNING: FlareServer.State
    STATE_STOPPED: FlareServer.State
    STATE_FAILED: FlareServer.State
    FLARE_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAMES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STOP_TIME_FIELD_NUMBER: _ClassVar[int]
    flare_server_id: str
    organization_id: str
    project_name: str
    client_names: _containers.RepeatedScalarFieldContainer[str]
    state: FlareServer.State
    failure_reason: str
    address: str
    create_time: _timestamp_pb2.Timestamp
    stop_time: _timestamp_pb2.Timestamp
    def __init__(self, flare_server_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., project_name: _Optional[str] = ..., client_names: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[FlareServer.State, str]] = ..., failure_reason: _Optional[str] = ..., address: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., stop_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FedPateSeedBody(_message.Message):
    __slots__ = ("net_name", "num_rounds", "num_teachers", "teacher_epochs", "student_epochs", "batch_size", "learning_rate", "noise", "epsilon", "sigma", "num_queries", "noise_data", "bucket_name", "domain_name", "access_key", "secret_key", "teachers_per_node", "query_selection", "teacher_semi_supervised", "student_semi_supervised", "threshold", "sigma_threshold")
    NET_NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    NUM_TEACHERS_FIELD_NUMBER: _ClassVar[int]
    TEACHER_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STUDENT_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    NUM_QUERIES_FIELD_NUMBER: _ClassVar[int]
    NOISE_DATA_FIELD_NUMBER: _ClassVar[int]
    BUCKET_NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    TEACHERS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    QUERY_SELECTION_FIELD_NUMBER: _ClassVar[int]
    TEACHER_SEMI_SUPERVISED_FIELD_NUMBER: _ClassVar[int]
    STUDENT_SEMI_SUPERVISED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SIGMA_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    net_name: str
    num_rounds: int
    num_teachers: int
    teacher_epochs: int
    student_epochs: int
    batch_size: int
    learning_rate: float
    noise: str
    epsilon: float
    sigma: float
    num_queries: int
    noise_data: int
    bucket_name: str
    domain_name: str
    access_key: str
    secret_key: str
    teachers_per_node: int
    query_selection: str
    teacher_semi_supervised: str
    student_semi_supervised: str
    threshold: float
    sigma_threshold: float
    def __init__(self, net_name: _Optional[str] = ..., num_rounds: _Optional[int] = ..., num_teachers: _Optional[int] = ..., teacher_epochs: _Optional[int] = ..., student_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., noise: _Optional[str] = ..., epsilon: _Optional[float] = ..., sigma: _Optional[float] = ..., num_queries: _Optional[int] = ..., noise_data: _Optional[int] = ..., bucket_name: _Optional[str] = ..., domain_name: _Optional[str] = ..., access_key: _Optional[str] = ..., secret_key: _Optional[str] = ..., teachers_per_node: _Optional[int] = ..., query_selection: _Optional[str] = ..., teacher_semi_supervised: _Optional[str] = ..., student_semi_supervised: _Optional[str] = ..., threshold: _Optional[float] = ..., sigma_threshold: _Optional[float] = ...) -> None: ...

class TffSeedBody(_message.Message):
    __slots__ = ("imb_parameter", "dp_parameter", "n_clients", "n_samples", "target_label", "minio_repo", "access_key", "secret_key")
    IMB_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    DP_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    N_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TARGET_LABEL_FIELD_NUMBER: _ClassVar[int]
    MINIO_REPO_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    imb_parameter: float
    dp_parameter: float
    n_clients: int
    n_samples: int
    target_label: str
    minio_repo: str
    access_key: str
    secret_key: str
    def __init__(self, imb_parameter: _Optional[float] = ..., dp_parameter: _Optional[float] = ..., n_clients: _Optional[int] = ..., n_samples: _Optional[int] = ..., target_label: _Optional[str] = ..., minio_repo: _Optional[str] = ..., access_key: _Optional[str] = ..., secret_key: _Optional[str] = ...) -> None: ...

class FlareSeedBody(_message.Message):
    __slots__ = ("epochs", "batch_size", "num_clients", "num_rounds", "bucket_name", "domain_name", "secret_key", "access_key")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NUM_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    batch_size: int
    num_clients: int
    num_rounds: int
    bucket_name: str
    domain_name: str
    secret_key: str
    access_key: str
    def __init__(self, epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., num_clients: _Optional[int] = ..., num_rounds: _Optional[int] = ..., bucket_name: _Optional[str] = ..., domain_name: _Optional[str] = ..., secret_key: _Optional[str] = ..., access_key: _Optional[str] = ...) -> None: ...

class FlareServerSeedBody(_message.Message):
    __slots__ = ("start", "shutdown")
    START_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    start: bool
    shutdown: bool
    def __init__(self, start: bool = ..., shutdown: bool = ...) -> None: ...

class CreateFederatedJobRequest(_message.Message):
    __slots__ = ("job", "fp", "tff", "nv", "dataset_id", "target_column", "display_name")
    JOB_FIELD_NUMBER: _ClassVar[int]
    FP_FIELD_NUMBER: _ClassVar[int]
    TFF_FIELD_NUMBER: _ClassVar[int]
    NV_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_COLUMN_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    job: FederatedJob
    fp: FedPateSeedBody
    tff: TffSeedBody
    nv: FlareSeedBody
    dataset_id: str
    target_column: str
    display_name: str
    def __init__(self, job: _Optional[_Union[FederatedJob, _Mapping]] = ..., fp: _Optional[_Union[FedPateSeedBody, _Mapping]] = ..., tff: _Optional[_Union[TffSeedBody, _Mapping]] = ..., nv: _Optional[_Union[FlareSeedBody, _Mapping]] = ..., dataset_id: _Optional[str] = ..., target_column: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class GetFederatedJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListFederatedJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "framework")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    framework: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., framework: _Optional[str] = ...) -> None: ...

class ListFederatedJobsResponse(_message.Message):
    __slots__ = ("federated_jobs", "next_page_token")
    FEDERATED_JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    federated_jobs: _containers.RepeatedCompositeFieldContainer[FederatedJob]
    next_page_token: str
    def __init__(self, federated_jobs: _Optional[_Iterable[_Union[FederatedJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelFederatedJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteFederatedJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteFederatedJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchFederatedJobRequest(_message.Message):
    __slots__ = ("job_id", "after_log_sequence")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_LOG_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_log_sequence: int
    def __init__(self, job_id: _Optional[str] = ..., after_log_sequence: _Optional[int] = ...) -> None: ...

class CreateFlareServerRequest(_message.Message):
    __slots__ = ("flare_server", "nvoverser")
    FLARE_SERVER_FIELD_NUMBER: _ClassVar[int]
    NVOVERSER_FIELD_NUMBER: _ClassVar[int]
    flare_server: FlareServer
    nvoverser: FlareServerSeedBody
    def __init__(self, flare_server: _Optional[_Union[FlareServer, _Mapping]] = ..., nvoverser: _Optional[_Union[FlareServerSeedBody, _Mapping]] = ...) -> None: ...

class GetFlareServerRequest(_message.Message):
    __slots__ = ("flare_server_id",)
    FLARE_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    flare_server_id: str
    def __init__(self, flare_server_id: _Optional[str] = ...) -> None: ...

class ListFlareServersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlareServersResponse(_message.Message):
    __slots__ = ("flare_servers", "next_page_token")
    FLARE_SERVERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flare_servers: _containers.RepeatedCompositeFieldContainer[FlareServer]
    next_page_token: str
    def __init__(self, flare_servers: _Optional[_Iterable[_Union[FlareServer, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteFlareServerRequest(_message.Message):
    __slots__ = ("flare_server_id",)
    FLARE_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    flare_server_id: str
    def __init__(self, flare_server_id: _Optional[str] = ...) -> None: ...

class DeleteFlareServerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DownloadFlowerRootCertificatesRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DownloadFlareStartupKitRequest(_message.Message):
    __slots__ = ("flare_server_id", "client_name")
    FLARE_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    flare_server_id: str
    client_name: str
    def __init__(self, flare_server_id: _Optional[str] = ..., client_name: _Optional[str] = ...) -> None: ...
