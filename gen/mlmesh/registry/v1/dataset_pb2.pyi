from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Dataset(_message.Message):
    __slots__ = ("dataset_id", "display_name", "organization_id", "samples_dimension", "content_type", "filename", "size_bytes", "md5", "sha256", "contract_address", "contract_tx_hash", "create_time")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_TX_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    display_name: str
    organization_id: str
    samples_dimension: str
    content_type: str
    filename: str
    size_bytes: int
    md5: str
    sha256: str
    contract_address: str
    contract_tx_hash: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, dataset_id: _Optional[str] = ..., display_name: _Optional[str] = ..., organization_id: _Optional[str] = ..., samples_dimension: _Optional[str] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., md5: _Optional[str] = ..., sha256: _Optional[str] = ..., contract_address: _Optional[str] = ..., contract_tx_hash: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OnChainDataset(_message.Message):
    __slots__ = ("contract_address", "chain_id", "dataset_id", "organization_id", "samples_dimension", "size_bytes", "md5", "sha256", "block_number")
    CONTRACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    contract_address: str
    chain_id: int
    dataset_id: str
    organization_id: str
    samples_dimension: str
    size_bytes: int
    md5: str
    sha256: str
    block_number: int
    def __init__(self, contract_address: _Optional[str] = ..., chain_id: _Optional[int] = ..., dataset_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., samples_dimension: _Optional[str] = ..., size_bytes: _Optional[int] = ..., md5: _Optional[str] = ..., sha256: _Optional[str] = ..., block_number: _Optional[int] = ...) -> None: ...

class ProvenanceCheck(_message.Message):
    __slots__ = ("name", "ok", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    ok: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., ok: bool = ..., detail: _Optional[str] = ...) -> None: ...

class DatasetProvenance(_message.Message):
    __slots__ = ("dataset", "on_chain", "stored_md5", "stored_sha256", "stored_size_bytes", "checks", "consistent")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ON_CHAIN_FIELD_NUMBER: _ClassVar[int]
    STORED_MD5_FIELD_NUMBER: _ClassVar[int]
    STORED_SHA256_FIELD_NUMBER: _ClassVar[int]
    STORED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    on_chain: OnChainDataset
    stored_md5: str
    stored_sha256: str
    stored_size_bytes: int
    checks: _containers.RepeatedCompositeFieldContainer[ProvenanceCheck]
    consistent: bool
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., on_chain: _Optional[_Union[OnChainDataset, _Mapping]] = ..., stored_md5: _Optional[str] = ..., stored_sha256: _Optional[str] = ..., stored_size_bytes: _Optional[int] = ..., checks: _Optional[_Iterable[_Union[ProvenanceCheck, _Mapping]]] = ..., consistent: bool = ...) -> None: ...
