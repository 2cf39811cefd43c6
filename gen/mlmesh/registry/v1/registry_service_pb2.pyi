from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from mlmesh.common.v1 import validation_pb2 as _validation_pb2
from mlmesh.registry.v1 import access_pb2 as _access_pb2
from mlmesh.registry.v1 import dataset_pb2 as _dataset_pb2
from mlmesh.registry.v1 import lineage_pb2 as _lineage_pb2
from mlmesh.registry.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UploadDatasetRequest(_message.Message):
    __slots__ = ("organization_id", "display_name", "samples_dimension", "content_type", "filename", "expected_md5", "expected_sha256", "chunk")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_MD5_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    display_name: str
    samples_dimension: str
    content_type: str
    filename: str
    expected_md5: str
    expected_sha256: str
    chunk: _httpbody_pb2.HttpBody
    def __init__(self, organization_id: _Optional[str] = ..., display_name: _Optional[str] = ..., samples_dimension: _Optional[str] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ..., expected_md5: _Optional[str] = ..., expected_sha256: _Optional[str] = ..., chunk: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "organization_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    organization_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[_dataset_pb2.Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DownloadDatasetRequest(_message.Message):
    __slots__ = ("dataset_id", "offset")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    offset: int
    def __init__(self, dataset_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class GetDatasetProvenanceRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ("organization_id", "developer_id", "dataset_id", "display_name", "recipe_filename", "expected_recipe_sha256", "image_reference", "image_digest", "time_limit_seconds", "memory_limit_bytes", "chunk")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    RECIPE_FILENAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RECIPE_SHA256_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    developer_id: str
    dataset_id: str
    display_name: str
    recipe_filename: str
    expected_recipe_sha256: str
    image_reference: str
    image_digest: str
    time_limit_seconds: int
    memory_limit_bytes: int
    chunk: _httpbody_pb2.HttpBody
    def __init__(self, organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., display_name: _Optional[str] = ..., recipe_filename: _Optional[str] = ..., expected_recipe_sha256: _Optional[str] = ..., image_reference: _Optional[str] = ..., image_digest: _Optional[str] = ..., time_limit_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., chunk: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "organization_id", "dataset_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    organization_id: str
    dataset_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., organization_id: _Optional[str] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DownloadModelRequest(_message.Message):
    __slots__ = ("model_id", "offset")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    offset: int
    def __init__(self, model_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class DownloadModelRecipeRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class GetModelProvenanceRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ReportTrainingStatusRequest(_message.Message):
    __slots__ = ("model_id", "training_job_id", "state", "failure_reason")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    training_job_id: str
    state: _model_pb2.Model.State
    failure_reason: str
    def __init__(self, model_id: _Optional[str] = ..., training_job_id: _Optional[str] = ..., state: _Optional[_Union[_model_pb2.Model.State, str]] = ..., failure_reason: _Optional[str] = ...) -> None: ...

class SubmitTrainingResultRequest(_message.Message):
    __slots__ = ("model_id", "training_job_id", "framework", "input_signature", "chunk")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    training_job_id: str
    framework: str
    input_signature: str
    chunk: _httpbody_pb2.HttpBody
    def __init__(self, model_id: _Optional[str] = ..., training_job_id: _Optional[str] = ..., framework: _Optional[str] = ..., input_signature: _Optional[str] = ..., chunk: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class CreateModelVersionRequest(_message.Message):
    __slots__ = ("organization_id", "developer_id", "display_name", "dataset_id", "parent_model_id", "version", "framework", "input_signature", "learner_id", "observations", "observations_sha256", "validation_loss", "learning_record", "chunk")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_SHA256_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RECORD_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    developer_id: str
    display_name: str
    dataset_id: str
    parent_model_id: str
    version: int
    framework: str
    input_signature: str
    learner_id: str
    observations: int
    observations_sha256: str
    validation_loss: float
    learning_record: bytes
    chunk: _httpbody_pb2.HttpBody
    def __init__(self, organization_id: _Optional[str] = ..., developer_id: _Optional[str] = ..., display_name: _Optional[str] = ..., dataset_id: _Optional[str] = ..., parent_model_id: _Optional[str] = ..., version: _Optional[int] = ..., framework: _Optional[str] = ..., input_signature: _Optional[str] = ..., learner_id: _Optional[str] = ..., observations: _Optional[int] = ..., observations_sha256: _Optional[str] = ..., validation_loss: _Optional[float] = ..., learning_record: _Optional[bytes] = ..., chunk: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class ShareDatasetRequest(_message.Message):
    __slots__ = ("dataset_id", "organization_ids", "public")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    organization_ids: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    def __init__(self, dataset_id: _Optional[str] = ..., organization_ids: _Optional[_Iterable[str]] = ..., public: bool = ...) -> None: ...

class UnshareDatasetRequest(_message.Message):
    __slots__ = ("dataset_id", "organization_ids", "public")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    organization_ids: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    def __init__(self, dataset_id: _Optional[str] = ..., organization_ids: _Optional[_Iterable[str]] = ..., public: bool = ...) -> None: ...

class GetDatasetAccessPolicyRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class ListDatasetUsagesRequest(_message.Message):
    __slots__ = ("dataset_id", "page_size", "page_token")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    page_size: int
    page_token: str
    def __init__(self, dataset_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetUsagesResponse(_message.Message):
    __slots__ = ("usages", "next_page_token")
    USAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    usages: _containers.RepeatedCompositeFieldContainer[_access_pb2.DatasetUsage]
    next_page_token: str
    def __init__(self, usages: _Optional[_Iterable[_Union[_access_pb2.DatasetUsage, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ShareModelRequest(_message.Message):
    __slots__ = ("model_id", "organization_ids", "public")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    organization_ids: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    def __init__(self, model_id: _Optional[str] = ..., organization_ids: _Optional[_Iterable[str]] = ..., public: bool = ...) -> None: ...

class UnshareModelRequest(_message.Message):
    __slots__ = ("model_id", "organization_ids", "public")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    organization_ids: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    def __init__(self, model_id: _Optional[str] = ..., organization_ids: _Optional[_Iterable[str]] = ..., public: bool = ...) -> None: ...

class GetModelAccessPolicyRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class GetModelLineageRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ExportModelAttestationsRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ExportModelAttestationsResponse(_message.Message):
    __slots__ = ("envelopes", "signing_key")
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedScalarFieldContainer[str]
    signing_key: SigningKey
    def __init__(self, envelopes: _Optional[_Iterable[str]] = ..., signing_key: _Optional[_Union[SigningKey, _Mapping]] = ...) -> None: ...

class GetSigningKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SigningKey(_message.Message):
    __slots__ = ("key_id", "public_key_pem", "scheme")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key_pem: str
    scheme: str
    def __init__(self, key_id: _Optional[str] = ..., public_key_pem: _Optional[str] = ..., scheme: _Optional[str] = ...) -> None: ...

class GetModelSignatureRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ModelSignature(_message.Message):
    __slots__ = ("model_id", "sha256", "bundle", "media_type", "signing_key")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    sha256: str
    bundle: str
    media_type: str
    signing_key: SigningKey
    def __init__(self, model_id: _Optional[str] = ..., sha256: _Optional[str] = ..., bundle: _Optional[str] = ..., media_type: _Optional[str] = ..., signing_key: _Optional[_Union[SigningKey, _Mapping]] = ...) -> None: ...
