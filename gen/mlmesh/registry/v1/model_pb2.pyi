from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.registry.v1 import dataset_pb2 as _dataset_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Model(_message.Message):
    __slots__ = ("model_id", "display_name", "organization_id", "developer_id", "dataset_id", "training_source", "state", "failure_reason", "training_job_id", "framework", "size_bytes", "res_md5", "res_sha256", "contract_address", "contract_tx_hash", "verify_tx_hash", "create_time", "update_time", "input_signature", "parent_model_id", "version")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Model.State]
        STATE_PENDING: _ClassVar[Model.State]
        STATE_TRAINING: _ClassVar[Model.State]
        STATE_TRAINED: _ClassVar[Model.State]
        STATE_FAILED: _ClassVar[Model.State]
    STATE_UNSPECIFIED: Model.State
    STATE_PENDING: Model.State
    STATE_TRAINING: Model.State
    STATE_TRAINED: Model.State
    STATE_FAILED: Model.State
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    TRAINING_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RES_MD5_FIELD_NUMBER: _ClassVar[int]
    RES_SHA256_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_TX_HASH_FIELD_NUMBER: _ClassVar[int]
    VERIFY_TX_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PARENT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    display_name: str
    organization_id: str
    developer_id: str
    dataset_id: str
    training_source: TrainingSource
    state: Model.State
    failure_reason: str
    training_job_id: str
    framework: str
    size_bytes: int
    res_md5: str
    res_sha256: str
    contract_address: str
    contract_tx_hash: str
    verify_tx_hash: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    input_signature: str
    parent_model_id: str
    version: int
    def __init__(self, model_id: _Optional[str] = ..., display_name: _Optional[str] = ..., organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., training_source: _Optional[_Union[TrainingSource, _Mapping]] = ..., state: _Optional[_Union[Model.State, str]] = ..., failure_reason: _Optional[str] = ..., training_job_id: _Optional[str] = ..., framework: _Optional[str] = ..., size_bytes: _Optional[int] = ..., res_md5: _Optional[str] = ..., res_sha256: _Optional[str] = ..., contract_address: _Optional[str] = ..., contract_tx_hash: _Optional[str] = ..., verify_tx_hash: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., input_signature: _Optional[str] = ..., parent_model_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class TrainingSource(_message.Message):
    __slots__ = ("recipe", "image", "online")
    RECIPE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    recipe: RecipeArchive
    image: ContainerImage
    online: OnlineLearning
    def __init__(self, recipe: _Optional[_Union[RecipeArchive, _Mapping]] = ..., image: _Optional[_Union[ContainerImage, _Mapping]] = ..., online: _Optional[_Union[OnlineLearning, _Mapping]] = ...) -> None: ...

class OnlineLearning(_message.Message):
    __slots__ = ("learner_id", "observations", "observations_sha256", "validation_loss", "record")
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_SHA256_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    observations: int
    observations_sha256: str
    validation_loss: float
    record: RecipeArchive
    def __init__(self, learner_id: _Optional[str] = ..., observations: _Optional[int] = ..., observations_sha256: _Optional[str] = ..., validation_loss: _Optional[float] = ..., record: _Optional[_Union[RecipeArchive, _Mapping]] = ...) -> None: ...

class RecipeArchive(_message.Message):
    __slots__ = ("filename", "size_bytes", "md5", "sha256")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    filename: str
    size_bytes: int
    md5: str
    sha256: str
    def __init__(self, filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., md5: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class ContainerImage(_message.Message):
    __slots__ = ("reference", "digest")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    reference: str
    digest: str
    def __init__(self, reference: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class OnChainModel(_message.Message):
    __slots__ = ("contract_address", "chain_id", "model_id", "organization_id", "developer_id", "dataset_id", "train_image_hash", "train_image_sha256", "res_hash", "res_sha256", "verified", "block_number")
    CONTRACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TRAIN_IMAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    RES_HASH_FIELD_NUMBER: _ClassVar[int]
    RES_SHA256_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    contract_address: str
    chain_id: int
    model_id: str
    organization_id: str
    developer_id: str
    dataset_id: str
    train_image_hash: str
    train_image_sha256: str
    res_hash: str
    res_sha256: str
    verified: bool
    block_number: int
    def __init__(self, contract_address: _Optional[str] = ..., chain_id: _Optional[int] = ..., model_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., train_image_hash: _Optional[str] = ..., train_image_sha256: _Optional[str] = ..., res_hash: _Optional[str] = ..., res_sha256: _Optional[str] = ..., verified: bool = ..., block_number: _Optional[int] = ...) -> None: ...

class ModelProvenance(_message.Message):
    __slots__ = ("model", "on_chain", "stored_md5", "stored_sha256", "checks", "consistent")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ON_CHAIN_FIELD_NUMBER: _ClassVar[int]
    STORED_MD5_FIELD_NUMBER: _ClassVar[int]
    STORED_SHA256_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    model: Model
    on_chain: OnChainModel
    stored_md5: str
    stored_sha256: str
    checks: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.ProvenanceCheck]
    consistent: bool
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., on_chain: _Optional[_Union[OnChainModel, _Mapping]] = ..., stored_md5: _Optional[str] = ..., stored_sha256: _Optional[str] = ..., checks: _Optional[_Iterable[_Union[_dataset_pb2.ProvenanceCheck, _Mapping]]] = ..., consistent: bool = ...) -> None: ...
