from mlmesh.common.v1 import validation_pb2 as _validation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetContract(_message.Message):
    __slots__ = ("address", "dataset_id", "organization_id", "samples_dimension", "size_bytes", "md5", "sha256", "block_number", "chain_id")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    address: str
    dataset_id: str
    organization_id: str
    samples_dimension: str
    size_bytes: int
    md5: str
    sha256: str
    block_number: int
    chain_id: int
    def __init__(self, address: _Optional[str] = ..., dataset_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., samples_dimension: _Optional[str] = ..., size_bytes: _Optional[int] = ..., md5: _Optional[str] = ..., sha256: _Optional[str] = ..., block_number: _Optional[int] = ..., chain_id: _Optional[int] = ...) -> None: ...

class ModelContract(_message.Message):
    __slots__ = ("address", "model_id", "organization_id", "developer_id", "dataset_id", "train_image_hash", "train_image_sha256", "res_hash", "res_sha256", "verified", "block_number", "chain_id")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
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
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    address: str
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
    chain_id: int
    def __init__(self, address: _Optional[str] = ..., model_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., train_image_hash: _Optional[str] = ..., train_image_sha256: _Optional[str] = ..., res_hash: _Optional[str] = ..., res_sha256: _Optional[str] = ..., verified: bool = ..., block_number: _Optional[int] = ..., chain_id: _Optional[int] = ...) -> None: ...

class DeployDatasetContractRequest(_message.Message):
    __slots__ = ("dataset_id", "organization_id", "samples_dimension", "size_bytes", "md5", "sha256")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    organization_id: str
    samples_dimension: str
    size_bytes: int
    md5: str
    sha256: str
    def __init__(self, dataset_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., samples_dimension: _Optional[str] = ..., size_bytes: _Optional[int] = ..., md5: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class DeployDatasetContractResponse(_message.Message):
    __slots__ = ("contract", "tx_hash")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    contract: DatasetContract
    tx_hash: str
    def __init__(self, contract: _Optional[_Union[DatasetContract, _Mapping]] = ..., tx_hash: _Optional[str] = ...) -> None: ...

class DeployModelContractRequest(_message.Message):
    __slots__ = ("model_id", "organization_id", "developer_id", "dataset_id", "train_image_hash", "train_image_sha256")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TRAIN_IMAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    organization_id: str
    developer_id: str
    dataset_id: str
    train_image_hash: str
    train_image_sha256: str
    def __init__(self, model_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., train_image_hash: _Optional[str] = ..., train_image_sha256: _Optional[str] = ...) -> None: ...

class DeployModelContractResponse(_message.Message):
    __slots__ = ("contract", "tx_hash")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    contract: ModelContract
    tx_hash: str
    def __init__(self, contract: _Optional[_Union[ModelContract, _Mapping]] = ..., tx_hash: _Optional[str] = ...) -> None: ...

class GetDatasetContractRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class GetModelContractRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class VerifyModelRequest(_message.Message):
    __slots__ = ("address", "res_hash", "res_sha256")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RES_HASH_FIELD_NUMBER: _ClassVar[int]
    RES_SHA256_FIELD_NUMBER: _ClassVar[int]
    address: str
    res_hash: str
    res_sha256: str
    def __init__(self, address: _Optional[str] = ..., res_hash: _Optional[str] = ..., res_sha256: _Optional[str] = ...) -> None: ...

class VerifyModelResponse(_message.Message):
    __slots__ = ("contract", "tx_hash")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    contract: ModelContract
    tx_hash: str
    def __init__(self, contract: _Optional[_Union[ModelContract, _Mapping]] = ..., tx_hash: _Optional[str] = ...) -> None: ...

class GetChainInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChainInfo(_message.Message):
    __slots__ = ("chain_id", "block_number", "signer_address", "node_version")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIGNER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    block_number: int
    signer_address: str
    node_version: str
    def __init__(self, chain_id: _Optional[int] = ..., block_number: _Optional[int] = ..., signer_address: _Optional[str] = ..., node_version: _Optional[str] = ...) -> None: ...

class TranslationContract(_message.Message):
    __slots__ = ("address", "translation_id", "model_id", "model_contract", "source_sha256", "onnx_md5", "onnx_sha256", "converter", "opset", "max_abs_diff", "max_rel_diff", "atol", "rtol", "parity_passed", "block_number", "chain_id")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ONNX_MD5_FIELD_NUMBER: _ClassVar[int]
    ONNX_SHA256_FIELD_NUMBER: _ClassVar[int]
    CONVERTER_FIELD_NUMBER: _ClassVar[int]
    OPSET_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    MAX_REL_DIFF_FIELD_NUMBER: _ClassVar[int]
    ATOL_FIELD_NUMBER: _ClassVar[int]
    RTOL_FIELD_NUMBER: _ClassVar[int]
    PARITY_PASSED_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    address: str
    translation_id: str
    model_id: str
    model_contract: str
    source_sha256: str
    onnx_md5: str
    onnx_sha256: str
    converter: str
    opset: int
    max_abs_diff: str
    max_rel_diff: str
    atol: str
    rtol: str
    parity_passed: bool
    block_number: int
    chain_id: int
    def __init__(self, address: _Optional[str] = ..., translation_id: _Optional[str] = ..., model_id: _Optional[str] = ..., model_contract: _Optional[str] = ..., source_sha256: _Optional[str] = ..., onnx_md5: _Optional[str] = ..., onnx_sha256: _Optional[str] = ..., converter: _Optional[str] = ..., opset: _Optional[int] = ..., max_abs_diff: _Optional[str] = ..., max_rel_diff: _Optional[str] = ..., atol: _Optional[str] = ..., rtol: _Optional[str] = ..., parity_passed: bool = ..., block_number: _Optional[int] = ..., chain_id: _Optional[int] = ...) -> None: ...

class DeployTranslationContractRequest(_message.Message):
    __slots__ = ("translation_id", "model_id", "model_contract", "source_sha256", "onnx_md5", "onnx_sha256", "converter", "opset", "max_abs_diff", "max_rel_diff", "atol", "rtol", "parity_passed")
    TRANSLATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONTRACT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ONNX_MD5_FIELD_NUMBER: _ClassVar[int]
    ONNX_SHA256_FIELD_NUMBER: _ClassVar[int]
    CONVERTER_FIELD_NUMBER: _ClassVar[int]
    OPSET_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    MAX_REL_DIFF_FIELD_NUMBER: _ClassVar[int]
    ATOL_FIELD_NUMBER: _ClassVar[int]
    RTOL_FIELD_NUMBER: _ClassVar[int]
    PARITY_PASSED_FIELD_NUMBER: _ClassVar[int]
    translation_id: str
    model_id: str
    model_contract: str
    source_sha256: str
    onnx_md5: str
    onnx_sha256: str
    converter: str
    opset: int
    max_abs_diff: str
    max_rel_diff: str
    atol: str
    rtol: str
    parity_passed: bool
    def __init__(self, translation_id: _Optional[str] = ..., model_id: _Optional[str] = ..., model_contract: _Optional[str] = ..., source_sha256: _Optional[str] = ..., onnx_md5: _Optional[str] = ..., onnx_sha256: _Optional[str] = ..., converter: _Optional[str] = ..., opset: _Optional[int] = ..., max_abs_diff: _Optional[str] = ..., max_rel_diff: _Optional[str] = ..., atol: _Optional[str] = ..., rtol: _Optional[str] = ..., parity_passed: bool = ...) -> None: ...

class DeployTranslationContractResponse(_message.Message):
    __slots__ = ("contract", "tx_hash")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    contract: TranslationContract
    tx_hash: str
    def __init__(self, contract: _Optional[_Union[TranslationContract, _Mapping]] = ..., tx_hash: _Optional[str] = ...) -> None: ...

class GetTranslationContractRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class AccessEntry(_message.Message):
    __slots__ = ("index", "resource_kind", "resource_id", "action", "grantee", "public", "actor_organization_id", "actor_subject_sha256", "event_time_micros", "block_number", "contract_address", "chain_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_SUBJECT_SHA256_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MICROS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    resource_kind: str
    resource_id: str
    action: str
    grantee: str
    public: bool
    actor_organization_id: str
    actor_subject_sha256: str
    event_time_micros: int
    block_number: int
    contract_address: str
    chain_id: int
    def __init__(self, index: _Optional[int] = ..., resource_kind: _Optional[str] = ..., resource_id: _Optional[str] = ..., action: _Optional[str] = ..., grantee: _Optional[str] = ..., public: bool = ..., actor_organization_id: _Optional[str] = ..., actor_subject_sha256: _Optional[str] = ..., event_time_micros: _Optional[int] = ..., block_number: _Optional[int] = ..., contract_address: _Optional[str] = ..., chain_id: _Optional[int] = ...) -> None: ...

class RecordAccessEventRequest(_message.Message):
    __slots__ = ("resource_kind", "resource_id", "action", "grantee", "public", "actor_organization_id", "actor_subject_sha256", "event_time_micros")
    RESOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_SUBJECT_SHA256_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MICROS_FIELD_NUMBER: _ClassVar[int]
    resource_kind: str
    resource_id: str
    action: str
    grantee: str
    public: bool
    actor_organization_id: str
    actor_subject_sha256: str
    event_time_micros: int
    def __init__(self, resource_kind: _Optional[str] = ..., resource_id: _Optional[str] = ..., action: _Optional[str] = ..., grantee: _Optional[str] = ..., public: bool = ..., actor_organization_id: _Optional[str] = ..., actor_subject_sha256: _Optional[str] = ..., event_time_micros: _Optional[int] = ...) -> None: ...

class RecordAccessEventResponse(_message.Message):
    __slots__ = ("entry", "tx_hash")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    entry: AccessEntry
    tx_hash: str
    def __init__(self, entry: _Optional[_Union[AccessEntry, _Mapping]] = ..., tx_hash: _Optional[str] = ...) -> None: ...

class ListAccessEntriesRequest(_message.Message):
    __slots__ = ("resource_kind", "resource_id")
    RESOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    resource_kind: str
    resource_id: str
    def __init__(self, resource_kind: _Optional[str] = ..., resource_id: _Optional[str] = ...) -> None: ...

class ListAccessEntriesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AccessEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AccessEntry, _Mapping]]] = ...) -> None: ...
