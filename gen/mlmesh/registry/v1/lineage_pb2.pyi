from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.registry.v1 import dataset_pb2 as _dataset_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelLineage(_message.Message):
    __slots__ = ("model_id", "nodes", "consistent", "check_time", "chain_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    nodes: _containers.RepeatedCompositeFieldContainer[LineageNode]
    consistent: bool
    check_time: _timestamp_pb2.Timestamp
    chain_id: int
    def __init__(self, model_id: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[LineageNode, _Mapping]]] = ..., consistent: bool = ..., check_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., chain_id: _Optional[int] = ...) -> None: ...

class LineageNode(_message.Message):
    __slots__ = ("node_id", "parent_node_id", "kind", "visible", "resource_id", "display_name", "organization_id", "size_bytes", "md5", "sha256", "contract_address", "tx_hash", "create_time", "attributes", "dead_branch", "version", "check_status", "checks")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[LineageNode.Kind]
        KIND_DATASET: _ClassVar[LineageNode.Kind]
        KIND_RECIPE: _ClassVar[LineageNode.Kind]
        KIND_IMAGE: _ClassVar[LineageNode.Kind]
        KIND_TRAINING_JOB: _ClassVar[LineageNode.Kind]
        KIND_MODEL: _ClassVar[LineageNode.Kind]
        KIND_TRANSLATION: _ClassVar[LineageNode.Kind]
        KIND_VERSION: _ClassVar[LineageNode.Kind]
        KIND_REPRODUCTION: _ClassVar[LineageNode.Kind]
        KIND_FEDERATED_JOB: _ClassVar[LineageNode.Kind]
        KIND_DATA_COMMITMENT: _ClassVar[LineageNode.Kind]
        KIND_OPTIMIZER_AGENT: _ClassVar[LineageNode.Kind]
    KIND_UNSPECIFIED: LineageNode.Kind
    KIND_DATASET: LineageNode.Kind
    KIND_RECIPE: LineageNode.Kind
    KIND_IMAGE: LineageNode.Kind
    KIND_TRAINING_JOB: LineageNode.Kind
    KIND_MODEL: LineageNode.Kind
    KIND_TRANSLATION: LineageNode.Kind
    KIND_VERSION: LineageNode.Kind
    KIND_REPRODUCTION: LineageNode.Kind
    KIND_FEDERATED_JOB: LineageNode.Kind
    KIND_DATA_COMMITMENT: LineageNode.Kind
    KIND_OPTIMIZER_AGENT: LineageNode.Kind
    class CheckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHECK_STATUS_UNSPECIFIED: _ClassVar[LineageNode.CheckStatus]
        CHECK_STATUS_VERIFIED: _ClassVar[LineageNode.CheckStatus]
        CHECK_STATUS_MISMATCH: _ClassVar[LineageNode.CheckStatus]
        CHECK_STATUS_NOT_ANCHORED: _ClassVar[LineageNode.CheckStatus]
        CHECK_STATUS_UNAVAILABLE: _ClassVar[LineageNode.CheckStatus]
        CHECK_STATUS_HIDDEN: _ClassVar[LineageNode.CheckStatus]
    CHECK_STATUS_UNSPECIFIED: LineageNode.CheckStatus
    CHECK_STATUS_VERIFIED: LineageNode.CheckStatus
    CHECK_STATUS_MISMATCH: LineageNode.CheckStatus
    CHECK_STATUS_NOT_ANCHORED: LineageNode.CheckStatus
    CHECK_STATUS_UNAVAILABLE: LineageNode.CheckStatus
    CHECK_STATUS_HIDDEN: LineageNode.CheckStatus
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    DEAD_BRANCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHECK_STATUS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    parent_node_id: str
    kind: LineageNode.Kind
    visible: bool
    resource_id: str
    display_name: str
    organization_id: str
    size_bytes: int
    md5: str
    sha256: str
    contract_address: str
    tx_hash: str
    create_time: _timestamp_pb2.Timestamp
    attributes: _containers.ScalarMap[str, str]
    dead_branch: bool
    version: int
    check_status: LineageNode.CheckStatus
    checks: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.ProvenanceCheck]
    def __init__(self, node_id: _Optional[str] = ..., parent_node_id: _Optional[str] = ..., kind: _Optional[_Union[LineageNode.Kind, str]] = ..., visible: bool = ..., resource_id: _Optional[str] = ..., display_name: _Optional[str] = ..., organization_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., md5: _Optional[str] = ..., sha256: _Optional[str] = ..., contract_address: _Optional[str] = ..., tx_hash: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., dead_branch: bool = ..., version: _Optional[int] = ..., check_status: _Optional[_Union[LineageNode.CheckStatus, str]] = ..., checks: _Optional[_Iterable[_Union[_dataset_pb2.ProvenanceCheck, _Mapping]]] = ...) -> None: ...
