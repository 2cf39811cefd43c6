from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccessPolicy(_message.Message):
    __slots__ = ("resource", "owner_organization_id", "public", "grants", "history")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    OWNER_ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    resource: str
    owner_organization_id: str
    public: bool
    grants: _containers.RepeatedCompositeFieldContainer[Grant]
    history: _containers.RepeatedCompositeFieldContainer[AccessEvent]
    def __init__(self, resource: _Optional[str] = ..., owner_organization_id: _Optional[str] = ..., public: bool = ..., grants: _Optional[_Iterable[_Union[Grant, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[AccessEvent, _Mapping]]] = ...) -> None: ...

class Grant(_message.Message):
    __slots__ = ("organization_id", "grant_time", "granted_by")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANTED_BY_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    grant_time: _timestamp_pb2.Timestamp
    granted_by: str
    def __init__(self, organization_id: _Optional[str] = ..., grant_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., granted_by: _Optional[str] = ...) -> None: ...

class AccessEvent(_message.Message):
    __slots__ = ("action", "organization_id", "public", "actor", "event_time", "actor_organization_id", "changed", "anchor")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTION_UNSPECIFIED: _ClassVar[AccessEvent.Action]
        ACTION_SHARE: _ClassVar[AccessEvent.Action]
        ACTION_UNSHARE: _ClassVar[AccessEvent.Action]
    ACTION_UNSPECIFIED: AccessEvent.Action
    ACTION_SHARE: AccessEvent.Action
    ACTION_UNSHARE: AccessEvent.Action
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    action: AccessEvent.Action
    organization_id: str
    public: bool
    actor: str
    event_time: _timestamp_pb2.Timestamp
    actor_organization_id: str
    changed: bool
    anchor: AccessAnchor
    def __init__(self, action: _Optional[_Union[AccessEvent.Action, str]] = ..., organization_id: _Optional[str] = ..., public: bool = ..., actor: _Optional[str] = ..., event_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., actor_organization_id: _Optional[str] = ..., changed: bool = ..., anchor: _Optional[_Union[AccessAnchor, _Mapping]] = ...) -> None: ...

class AccessAnchor(_message.Message):
    __slots__ = ("tx_hash", "index", "check", "detail")
    class Check(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHECK_UNSPECIFIED: _ClassVar[AccessAnchor.Check]
        CHECK_CONSISTENT: _ClassVar[AccessAnchor.Check]
        CHECK_INCONSISTENT: _ClassVar[AccessAnchor.Check]
        CHECK_UNAVAILABLE: _ClassVar[AccessAnchor.Check]
    CHECK_UNSPECIFIED: AccessAnchor.Check
    CHECK_CONSISTENT: AccessAnchor.Check
    CHECK_INCONSISTENT: AccessAnchor.Check
    CHECK_UNAVAILABLE: AccessAnchor.Check
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    tx_hash: str
    index: int
    check: AccessAnchor.Check
    detail: str
    def __init__(self, tx_hash: _Optional[str] = ..., index: _Optional[int] = ..., check: _Optional[_Union[AccessAnchor.Check, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class DatasetUsage(_message.Message):
    __slots__ = ("model_id", "organization_id", "create_time")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    organization_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, model_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
