from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlmesh.common.v1 import validation_pb2 as _validation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ParityReport(_message.Message):
    __slots__ = ("max_abs_diff", "max_rel_diff", "atol", "rtol", "passed", "batch_source", "samples", "top1_agreement", "source_accuracy", "onnx_accuracy")
    MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    MAX_REL_DIFF_FIELD_NUMBER: _ClassVar[int]
    ATOL_FIELD_NUMBER: _ClassVar[int]
    RTOL_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    BATCH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TOP1_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ONNX_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    max_abs_diff: float
    max_rel_diff: float
    atol: float
    rtol: float
    passed: bool
    batch_source: str
    samples: int
    top1_agreement: float
    source_accuracy: float
    onnx_accuracy: float
    def __init__(self, max_abs_diff: _Optional[float] = ..., max_rel_diff: _Optional[float] = ..., atol: _Optional[float] = ..., rtol: _Optional[float] = ..., passed: bool = ..., batch_source: _Optional[str] = ..., samples: _Optional[int] = ..., top1_agreement: _Optional[float] = ..., source_accuracy: _Optional[float] = ..., onnx_accuracy: _Optional[float] = ...) -> None: ...

class Translation(_message.Message):
    __slots__ = ("translation_id", "model_id", "framework", "source_sha256", "converter", "opset", "size_bytes", "md5", "sha256", "parity", "report_json", "contract_address", "contract_tx_hash", "create_time")
    TRANSLATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CONVERTER_FIELD_NUMBER: _ClassVar[int]
    OPSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PARITY_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_TX_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    translation_id: str
    model_id: str
    framework: str
    source_sha256: str
    converter: str
    opset: int
    size_bytes: int
    md5: str
    sha256: str
    parity: ParityReport
    report_json: str
    contract_address: str
    contract_tx_hash: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, translation_id: _Optional[str] = ..., model_id: _Optional[str] = ..., framework: _Optional[str] = ..., source_sha256: _Optional[str] = ..., converter: _Optional[str] = ..., opset: _Optional[int] = ..., size_bytes: _Optional[int] = ..., md5: _Optional[str] = ..., sha256: _Optional[str] = ..., parity: _Optional[_Union[ParityReport, _Mapping]] = ..., report_json: _Optional[str] = ..., contract_address: _Optional[str] = ..., contract_tx_hash: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TranslateModelRequest(_message.Message):
    __slots__ = ("model_id", "opset")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    OPSET_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    opset: int
    def __init__(self, model_id: _Optional[str] = ..., opset: _Optional[int] = ...) -> None: ...

class GetTranslationRequest(_message.Message):
    __slots__ = ("translation_id",)
    TRANSLATION_ID_FIELD_NUMBER: _ClassVar[int]
    translation_id: str
    def __init__(self, translation_id: _Optional[str] = ...) -> None: ...

class ListTranslationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "model_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    model_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class ListTranslationsResponse(_message.Message):
    __slots__ = ("translations", "next_page_token")
    TRANSLATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    translations: _containers.RepeatedCompositeFieldContainer[Translation]
    next_page_token: str
    def __init__(self, translations: _Optional[_Iterable[_Union[Translation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DownloadTranslationRequest(_message.Message):
    __slots__ = ("translation_id", "offset")
    TRANSLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    translation_id: str
    offset: int
    def __init__(self, translation_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...
