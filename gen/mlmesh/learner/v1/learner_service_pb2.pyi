from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.common.v1 import validation_pb2 as _validation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Learner(_message.Message):
    __slots__ = ("learner_id", "display_name", "organization_id", "developer_id", "spec", "state", "failure_reason", "current_model_id", "version", "observations_learned", "predictions_served", "running_loss", "validation_loss", "saved_validation_loss", "feature_names", "create_time", "save_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Learner.State]
        STATE_READY: _ClassVar[Learner.State]
        STATE_FAILED: _ClassVar[Learner.State]
    STATE_UNSPECIFIED: Learner.State
    STATE_READY: Learner.State
    STATE_FAILED: Learner.State
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    CURRENT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_LEARNED_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_SERVED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    SAVED_VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SAVE_TIME_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    display_name: str
    organization_id: str
    developer_id: str
    spec: LearnerSpec
    state: Learner.State
    failure_reason: str
    current_model_id: str
    version: int
    observations_learned: int
    predictions_served: int
    running_loss: float
    validation_loss: float
    saved_validation_loss: float
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    save_time: _timestamp_pb2.Timestamp
    def __init__(self, learner_id: _Optional[str] = ..., display_name: _Optional[str] = ..., organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., spec: _Optional[_Union[LearnerSpec, _Mapping]] = ..., state: _Optional[_Union[Learner.State, str]] = ..., failure_reason: _Optional[str] = ..., current_model_id: _Optional[str] = ..., version: _Optional[int] = ..., observations_learned: _Optional[int] = ..., predictions_served: _Optional[int] = ..., running_loss: _Optional[float] = ..., validation_loss: _Optional[float] = ..., saved_validation_loss: _Optional[float] = ..., feature_names: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., save_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LearnerSpec(_message.Message):
    __slots__ = ("backend", "task", "backend_params", "transformer", "transformer_params", "starting_model_id", "reference_dataset_id", "save_policy", "micro_batch_size", "explainer", "monitoring")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    BACKEND_PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMER_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMER_PARAMS_FIELD_NUMBER: _ClassVar[int]
    STARTING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SAVE_POLICY_FIELD_NUMBER: _ClassVar[int]
    MICRO_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXPLAINER_FIELD_NUMBER: _ClassVar[int]
    MONITORING_FIELD_NUMBER: _ClassVar[int]
    backend: str
    task: str
    backend_params: _struct_pb2.Struct
    transformer: str
    transformer_params: _struct_pb2.Struct
    starting_model_id: str
    reference_dataset_id: str
    save_policy: SavePolicy
    micro_batch_size: int
    explainer: str
    monitoring: MonitoringPolicy
    def __init__(self, backend: _Optional[str] = ..., task: _Optional[str] = ..., backend_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., transformer: _Optional[str] = ..., transformer_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., starting_model_id: _Optional[str] = ..., reference_dataset_id: _Optional[str] = ..., save_policy: _Optional[_Union[SavePolicy, _Mapping]] = ..., micro_batch_size: _Optional[int] = ..., explainer: _Optional[str] = ..., monitoring: _Optional[_Union[MonitoringPolicy, _Mapping]] = ...) -> None: ...

class SavePolicy(_message.Message):
    __slots__ = ("min_relative_improvement", "validation_window", "min_observations", "disabled")
    MIN_RELATIVE_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MIN_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    min_relative_improvement: float
    validation_window: int
    min_observations: int
    disabled: bool
    def __init__(self, min_relative_improvement: _Optional[float] = ..., validation_window: _Optional[int] = ..., min_observations: _Optional[int] = ..., disabled: bool = ...) -> None: ...

class MonitoringPolicy(_message.Message):
    __slots__ = ("window", "every", "drift_share", "stattest_threshold")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    EVERY_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SHARE_FIELD_NUMBER: _ClassVar[int]
    STATTEST_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    window: int
    every: int
    drift_share: float
    stattest_threshold: float
    def __init__(self, window: _Optional[int] = ..., every: _Optional[int] = ..., drift_share: _Optional[float] = ..., stattest_threshold: _Optional[float] = ...) -> None: ...

class CreateLearnerRequest(_message.Message):
    __slots__ = ("learner",)
    LEARNER_FIELD_NUMBER: _ClassVar[int]
    learner: Learner
    def __init__(self, learner: _Optional[_Union[Learner, _Mapping]] = ...) -> None: ...

class GetLearnerRequest(_message.Message):
    __slots__ = ("learner_id",)
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    def __init__(self, learner_id: _Optional[str] = ...) -> None: ...

class ListLearnersRequest(_message.Message):
    __slots__ = ("organization_id", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLearnersResponse(_message.Message):
    __slots__ = ("learners", "next_page_token")
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    learners: _containers.RepeatedCompositeFieldContainer[Learner]
    next_page_token: str
    def __init__(self, learners: _Optional[_Iterable[_Union[Learner, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteLearnerRequest(_message.Message):
    __slots__ = ("learner_id",)
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    def __init__(self, learner_id: _Optional[str] = ...) -> None: ...

class DeleteLearnerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Observation(_message.Message):
    __slots__ = ("row", "reading", "image", "target")
    ROW_FIELD_NUMBER: _ClassVar[int]
    READING_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    row: FeatureRow
    reading: SensorReading
    image: ImageInput
    target: float
    def __init__(self, row: _Optional[_Union[FeatureRow, _Mapping]] = ..., reading: _Optional[_Union[SensorReading, _Mapping]] = ..., image: _Optional[_Union[ImageInput, _Mapping]] = ..., target: _Optional[float] = ...) -> None: ...

class FeatureRow(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class SensorReading(_message.Message):
    __slots__ = ("sensor_id", "time", "value")
    SENSOR_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    sensor_id: str
    time: _timestamp_pb2.Timestamp
    value: float
    def __init__(self, sensor_id: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ...) -> None: ...

class ImageInput(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class LearnRequest(_message.Message):
    __slots__ = ("learner_id", "observations", "flush")
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    observations: _containers.RepeatedCompositeFieldContainer[Observation]
    flush: bool
    def __init__(self, learner_id: _Optional[str] = ..., observations: _Optional[_Iterable[_Union[Observation, _Mapping]]] = ..., flush: bool = ...) -> None: ...

class LearnResponse(_message.Message):
    __slots__ = ("observations_received", "observations_learned", "pending", "batch_loss", "running_loss", "validation_loss", "saved")
    OBSERVATIONS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_LEARNED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    BATCH_LOSS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    SAVED_FIELD_NUMBER: _ClassVar[int]
    observations_received: int
    observations_learned: int
    pending: int
    batch_loss: float
    running_loss: float
    validation_loss: float
    saved: SavedVersion
    def __init__(self, observations_received: _Optional[int] = ..., observations_learned: _Optional[int] = ..., pending: _Optional[int] = ..., batch_loss: _Optional[float] = ..., running_loss: _Optional[float] = ..., validation_loss: _Optional[float] = ..., saved: _Optional[_Union[SavedVersion, _Mapping]] = ...) -> None: ...

class SavedVersion(_message.Message):
    __slots__ = ("model_id", "version", "parent_model_id", "validation_loss", "res_sha256")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARENT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    RES_SHA256_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    version: int
    parent_model_id: str
    validation_loss: float
    res_sha256: str
    def __init__(self, model_id: _Optional[str] = ..., version: _Optional[int] = ..., parent_model_id: _Optional[str] = ..., validation_loss: _Optional[float] = ..., res_sha256: _Optional[str] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("learner_id", "inputs", "sensor_id")
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    SENSOR_ID_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    inputs: _containers.RepeatedCompositeFieldContainer[Observation]
    sensor_id: str
    def __init__(self, learner_id: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Observation, _Mapping]]] = ..., sensor_id: _Optional[str] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("values", "class_index", "label", "target_time", "annotated_image")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_TIME_FIELD_NUMBER: _ClassVar[int]
    ANNOTATED_IMAGE_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    class_index: int
    label: str
    target_time: _timestamp_pb2.Timestamp
    annotated_image: bytes
    def __init__(self, values: _Optional[_Iterable[float]] = ..., class_index: _Optional[int] = ..., label: _Optional[str] = ..., target_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., annotated_image: _Optional[bytes] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("predictions", "model_id", "observations_learned")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_LEARNED_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    model_id: str
    observations_learned: int
    def __init__(self, predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., model_id: _Optional[str] = ..., observations_learned: _Optional[int] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("learner_id", "input", "sensor_id", "method", "steps", "target_class")
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    SENSOR_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TARGET_CLASS_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    input: Observation
    sensor_id: str
    method: str
    steps: int
    target_class: int
    def __init__(self, learner_id: _Optional[str] = ..., input: _Optional[_Union[Observation, _Mapping]] = ..., sensor_id: _Optional[str] = ..., method: _Optional[str] = ..., steps: _Optional[int] = ..., target_class: _Optional[int] = ...) -> None: ...

class FeatureAttribution(_message.Message):
    __slots__ = ("name", "value", "attribution")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    attribution: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., attribution: _Optional[float] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("method", "attributions", "convergence_delta", "prediction", "baseline_prediction", "note")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_DELTA_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    BASELINE_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    method: str
    attributions: _containers.RepeatedCompositeFieldContainer[FeatureAttribution]
    convergence_delta: float
    prediction: float
    baseline_prediction: float
    note: str
    def __init__(self, method: _Optional[str] = ..., attributions: _Optional[_Iterable[_Union[FeatureAttribution, _Mapping]]] = ..., convergence_delta: _Optional[float] = ..., prediction: _Optional[float] = ..., baseline_prediction: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

class GetMonitoringRequest(_message.Message):
    __slots__ = ("learner_id", "refresh")
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    refresh: bool
    def __init__(self, learner_id: _Optional[str] = ..., refresh: bool = ...) -> None: ...

class FeatureDrift(_message.Message):
    __slots__ = ("name", "method", "score", "threshold", "drifted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    method: str
    score: float
    threshold: float
    drifted: bool
    def __init__(self, name: _Optional[str] = ..., method: _Optional[str] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., drifted: bool = ...) -> None: ...

class DataDrift(_message.Message):
    __slots__ = ("dataset_drift", "drift_share", "drifted_features", "feature_count", "features", "compute_time", "window_size")
    DATASET_DRIFT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SHARE_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    dataset_drift: bool
    drift_share: float
    drifted_features: int
    feature_count: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureDrift]
    compute_time: _timestamp_pb2.Timestamp
    window_size: int
    def __init__(self, dataset_drift: bool = ..., drift_share: _Optional[float] = ..., drifted_features: _Optional[int] = ..., feature_count: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureDrift, _Mapping]]] = ..., compute_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., window_size: _Optional[int] = ...) -> None: ...

class ErrorMetrics(_message.Message):
    __slots__ = ("count", "me", "mae", "mape", "over_estimation_share", "under_estimation_share", "compute_time")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ME_FIELD_NUMBER: _ClassVar[int]
    MAE_FIELD_NUMBER: _ClassVar[int]
    MAPE_FIELD_NUMBER: _ClassVar[int]
    OVER_ESTIMATION_SHARE_FIELD_NUMBER: _ClassVar[int]
    UNDER_ESTIMATION_SHARE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    count: int
    me: float
    mae: float
    mape: float
    over_estimation_share: float
    under_estimation_share: float
    compute_time: _timestamp_pb2.Timestamp
    def __init__(self, count: _Optional[int] = ..., me: _Optional[float] = ..., mae: _Optional[float] = ..., mape: _Optional[float] = ..., over_estimation_share: _Optional[float] = ..., under_estimation_share: _Optional[float] = ..., compute_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MonitoringReport(_message.Message):
    __slots__ = ("learner_id", "reference_size", "drift", "errors", "error_history", "drift_history")
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_HISTORY_FIELD_NUMBER: _ClassVar[int]
    DRIFT_HISTORY_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    reference_size: int
    drift: DataDrift
    errors: ErrorMetrics
    error_history: _containers.RepeatedCompositeFieldContainer[ErrorMetrics]
    drift_history: _containers.RepeatedCompositeFieldContainer[DataDrift]
    def __init__(self, learner_id: _Optional[str] = ..., reference_size: _Optional[int] = ..., drift: _Optional[_Union[DataDrift, _Mapping]] = ..., errors: _Optional[_Union[ErrorMetrics, _Mapping]] = ..., error_history: _Optional[_Iterable[_Union[ErrorMetrics, _Mapping]]] = ..., drift_history: _Optional[_Iterable[_Union[DataDrift, _Mapping]]] = ...) -> None: ...

class WatchLearnerEventsRequest(_message.Message):
    __slots__ = ("learner_id",)
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    def __init__(self, learner_id: _Optional[str] = ...) -> None: ...

class LearnerEvent(_message.Message):
    __slots__ = ("learner_id", "kind", "time", "drift", "saved")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[LearnerEvent.Kind]
        KIND_DRIFT_DETECTED: _ClassVar[LearnerEvent.Kind]
        KIND_DRIFT_CLEARED: _ClassVar[LearnerEvent.Kind]
        KIND_VERSION_SAVED: _ClassVar[LearnerEvent.Kind]
    KIND_UNSPECIFIED: LearnerEvent.Kind
    KIND_DRIFT_DETECTED: LearnerEvent.Kind
    KIND_DRIFT_CLEARED: LearnerEvent.Kind
    KIND_VERSION_SAVED: LearnerEvent.Kind
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    SAVED_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    kind: LearnerEvent.Kind
    time: _timestamp_pb2.Timestamp
    drift: DataDrift
    saved: SavedVersion
    def __init__(self, learner_id: _Optional[str] = ..., kind: _Optional[_Union[LearnerEvent.Kind, str]] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., drift: _Optional[_Union[DataDrift, _Mapping]] = ..., saved: _Optional[_Union[SavedVersion, _Mapping]] = ...) -> None: ...
