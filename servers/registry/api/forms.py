"""The seed's multipart forms and contract JSON (seed 4.3, 7.1, 7.2.2) <-> domain values. Pure functions.

Dataset registration: `--form dataset=@FILE --form 'metadata={"organization_id": …, "samples_dimension": …}'`.
Model registration: `--form 'metadata={"model_params": {"developer_id": …, "organization_id": …},
"data_params": {"dataset_id": …}}' --form train_image=<image reference>` (or `--form recipe=@recipe.tar.gz`).
The metadata takes the fields the query-parameter form takes (`POST /v1/datasets:upload?…`,
`POST /v1/models?…`), as JSON strings; an unknown key is refused as an unknown query parameter is.
"""

from __future__ import annotations

import dataclasses
import json

from mlmesh.registry.v1 import registry_service_pb2 as svc
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from servers.common import errors, validation
from servers.common.http import MAX_JSON_DEPTH, json_too_deep
from servers.registry.domain.datasets import UploadMetadata
from servers.registry.domain.models import CreateModel
from servers.registry.domain.ports import DatasetContractFields, ModelContractFields

MAX_METADATA_BYTES = 64 << 10
_MAX_ERROR_CHARS = 300


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetForm(_Strict):
    organization_id: StrictStr = ""
    display_name: StrictStr = ""
    samples_dimension: StrictStr = ""
    content_type: StrictStr = ""
    filename: StrictStr = ""
    expected_md5: StrictStr = ""
    expected_sha256: StrictStr = ""


class ModelParams(_Strict):
    developer_id: StrictStr = ""
    organization_id: StrictStr = ""
    display_name: StrictStr = ""
    expected_recipe_sha256: StrictStr = ""
    image_digest: StrictStr = ""
    time_limit_seconds: StrictInt = 0
    memory_limit_bytes: StrictInt = 0


class DataParams(_Strict):
    dataset_id: StrictStr = ""


class ModelForm(_Strict):
    model_params: ModelParams = ModelParams()
    data_params: DataParams = DataParams()


def _strip_trailing_commas(text: str) -> str:
    """`text` without commas that directly precede a closing `}` or `]` (outside strings). The seed's
    own model metadata has one (`"organization_id": "...",\\n}`); JSON does not allow it, JSON5 does."""
    out: list[str] = []
    in_string = escaped = False
    pending_comma: int | None = None  # index in `out` of a comma not yet followed by a value
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch in "}]" and pending_comma is not None:
            out[pending_comma] = ""
        if ch == ",":
            pending_comma = len(out)
        elif not ch.isspace():
            pending_comma = None
        if ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + "..."


def parse_metadata(raw: bytes, form: type[_Strict], example: str) -> _Strict:
    """The `metadata` part as `form`; InvalidArgument (METADATA_NOT_JSON / METADATA_INVALID) naming
    what is wrong otherwise. Trailing commas are tolerated (see `_strip_trailing_commas`)."""
    if json_too_deep(raw):
        raise errors.InvalidArgument(f"the metadata part nests more than {MAX_JSON_DEPTH} levels; send e.g. "
                                     f"--form 'metadata={example}'", reason="METADATA_NOT_JSON")
    try:
        value = json.loads(_strip_trailing_commas(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise errors.InvalidArgument(
            f"the metadata part is not JSON ({_short(str(exc))}); send e.g. --form 'metadata={example}'",
            reason="METADATA_NOT_JSON") from None
    if not isinstance(value, dict):
        raise errors.InvalidArgument(f"the metadata part must be a JSON object, e.g. {example}",
                                     reason="METADATA_NOT_JSON")
    try:
        return form.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'metadata'}: {e['msg']}"
                             for e in exc.errors(include_url=False, include_input=False))
        raise errors.InvalidArgument(f"metadata: {_short(problems)}", reason="METADATA_INVALID") from None


DATASET_EXAMPLE = '{"organization_id": "...", "samples_dimension": "(1,32,32)"}'
MODEL_EXAMPLE = ('{"model_params": {"developer_id": "...", "organization_id": "..."}, '
                 '"data_params": {"dataset_id": "..."}}')


def upload_metadata_from_form(form: DatasetForm, *, filename: str, content_type: str) -> UploadMetadata:
    """The upload's metadata: the form's fields; a missing display name or file name is the
    uploaded file's name, a missing content type the file part's. Checked by UploadDataset's field
    rules (lengths, control characters), as the gRPC and transcoded routes are."""
    meta = UploadMetadata(
        organization_id=form.organization_id, display_name=form.display_name or filename,
        samples_dimension=form.samples_dimension, content_type=form.content_type or content_type,
        filename=form.filename or filename, expected_md5=form.expected_md5, expected_sha256=form.expected_sha256)
    validation.check_fields(dataclasses.asdict(meta), svc.UploadDatasetRequest)
    return meta


def create_model_from_form(form: ModelForm, *, train_image: str = "", recipe_filename: str = "") -> CreateModel:
    """The model registration: a missing display name is the recipe's file name or the image reference.
    Checked by CreateModel's field rules (lengths, control characters, limits not negative)."""
    p = form.model_params
    create = CreateModel(
        organization_id=p.organization_id, developer_id=p.developer_id, dataset_id=form.data_params.dataset_id,
        display_name=p.display_name or recipe_filename or train_image, recipe_filename=recipe_filename,
        expected_recipe_sha256=p.expected_recipe_sha256, image_reference=train_image, image_digest=p.image_digest,
        time_limit_seconds=p.time_limit_seconds, memory_limit_bytes=p.memory_limit_bytes)
    validation.check_fields(dataclasses.asdict(create), svc.CreateModelRequest)
    return create


def dataset_contract_json(c: DatasetContractFields) -> dict:
    """A Dataset contract as the seed's Blockchain service shows it (seed 4.3, Table 11)."""
    return {"organization_id": c.organization_id, "samples_dimension": c.samples_dimension,
            "size_bytes": c.size_bytes, "hash": c.md5}


def model_contract_json(c: ModelContractFields) -> dict:
    """A Model contract as the seed shows it (seed 4.3, Table 13); res_hash is "" until verified."""
    return {"model_params": {"developer_id": c.developer_id, "organization_id": c.organization_id,
                             "train_image_hash": c.train_image_hash, "res_hash": c.res_hash},
            "data_params": {"dataset_id": c.dataset_id}}
