"""Request checks. Everything that reaches the chain has passed these: a bad value costs a
clear INVALID_ARGUMENT instead of gas."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

from eth_utils import is_checksum_address, to_checksum_address

from servers.common.errors import InvalidArgument
from servers.ledger.domain.records import AccessEventSpec, DatasetSpec, ModelResult, ModelSpec, TranslationSpec

MD5_RE = re.compile(r"[0-9a-f]{32}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
MAX_TEXT_BYTES = 256
# A finite, non-negative decimal number as Python, JSON and numpy print one: "0", "0.001", "3.4e-07", "1E+3".
DECIMAL_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Room for any float64 in plain fixed-point notation (5e-324 is "0." and 324 digits; 1.8e308 has 309).
MAX_DECIMAL_CHARS = 400


def _invalid(field: str, message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {message}", reason=reason, metadata={"field": field})


def check_md5(field: str, value: str) -> str:
    """`value` if it is an MD5 digest in lowercase hex (32 characters)."""
    if not MD5_RE.fullmatch(value):
        raise _invalid(
            field, f"expected an MD5 digest as 32 lowercase hex characters, got {value!r}", "INVALID_MD5"
        )
    return value


def check_sha256(field: str, value: str) -> str:
    """`value` if it is a SHA-256 digest in lowercase hex (64 characters)."""
    if not SHA256_RE.fullmatch(value):
        raise _invalid(
            field,
            f"expected a SHA-256 digest as 64 lowercase hex characters, got {value!r}",
            "INVALID_SHA256",
        )
    return value


def check_text(field: str, value: str, *, required: bool) -> str:
    if required and not value:
        raise _invalid(field, "is required", "MISSING_FIELD")
    if len(value.encode()) > MAX_TEXT_BYTES:
        raise _invalid(field, f"is longer than {MAX_TEXT_BYTES} bytes", "FIELD_TOO_LONG")
    return value


def check_address(value: str, field: str = "address") -> str:
    """The checksummed form of a 0x-prefixed 20-byte address. All-lowercase and all-uppercase
    hex are accepted; mixed case must carry a valid EIP-55 checksum."""
    if not ADDRESS_RE.fullmatch(value):
        raise _invalid(
            field,
            f"expected a 0x-prefixed 20-byte hex address (42 characters), got {value!r}",
            "INVALID_ADDRESS",
        )
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
        raise _invalid(field, f"{value} has a wrong EIP-55 checksum (mistyped?)", "INVALID_ADDRESS_CHECKSUM")
    return to_checksum_address(value)


def check_dataset_spec(spec: DatasetSpec) -> DatasetSpec:
    check_text("dataset_id", spec.dataset_id, required=True)
    check_text("organization_id", spec.organization_id, required=False)
    check_text("samples_dimension", spec.samples_dimension, required=False)
    if spec.size_bytes < 0:
        raise _invalid("size_bytes", f"must not be negative, got {spec.size_bytes}", "NEGATIVE_SIZE")
    check_md5("md5", spec.md5)
    check_sha256("sha256", spec.sha256)
    return spec


def check_model_spec(spec: ModelSpec) -> ModelSpec:
    check_text("model_id", spec.model_id, required=True)
    check_text("organization_id", spec.organization_id, required=False)
    check_text("developer_id", spec.developer_id, required=False)
    check_text("dataset_id", spec.dataset_id, required=True)
    # A recipe archive is recorded by its MD5 (the seed's field); a container image by its
    # digest "sha256:<hex>", whose hex is then also the train_image_sha256.
    if spec.train_image_hash.startswith("sha256:"):
        check_sha256("train_image_hash", spec.train_image_hash.removeprefix("sha256:"))
        if spec.train_image_hash.removeprefix("sha256:") != spec.train_image_sha256:
            raise _invalid("train_image_sha256", "must be the hex of the image digest given as train_image_hash",
                           "IMAGE_DIGEST_MISMATCH")
    else:
        check_md5("train_image_hash", spec.train_image_hash)
    check_sha256("train_image_sha256", spec.train_image_sha256)
    return spec


def check_model_result(result: ModelResult) -> ModelResult:
    check_md5("res_hash", result.res_hash)
    check_sha256("res_sha256", result.res_sha256)
    return result


def check_decimal(field: str, value: str) -> str:
    """`value` if it is a finite, non-negative decimal number written as text ("0.001", "3.4e-07")."""
    if not value:
        raise _invalid(field, 'is required (a decimal number as text, e.g. "3.4e-07")', "MISSING_FIELD")
    if len(value) > MAX_DECIMAL_CHARS or not DECIMAL_RE.fullmatch(value):
        raise _invalid(
            field,
            f'expected a finite non-negative decimal number such as "3.4e-07" or "0.001", got {value!r}',
            "INVALID_DECIMAL",
        )
    if not Decimal(value).is_finite():  # unreachable by the pattern; a guard against a looser one
        raise _invalid(field, f"must be finite, got {value!r}", "INVALID_DECIMAL")
    return value


def check_translation_spec(spec: TranslationSpec) -> TranslationSpec:
    """The spec with `model_contract` checksummed, if every field is well formed."""
    check_text("translation_id", spec.translation_id, required=True)
    check_text("model_id", spec.model_id, required=True)
    model_contract = check_address(spec.model_contract, "model_contract")
    check_sha256("source_sha256", spec.source_sha256)
    check_md5("onnx_md5", spec.onnx_md5)
    check_sha256("onnx_sha256", spec.onnx_sha256)
    check_text("converter", spec.converter, required=True)
    if spec.opset < 1:
        raise _invalid("opset", f"must be a positive ONNX opset version, got {spec.opset}", "INVALID_OPSET")
    for field in ("max_abs_diff", "max_rel_diff", "atol", "rtol"):
        check_decimal(field, getattr(spec, field))
    return dataclasses.replace(spec, model_contract=model_contract)


ACCESS_RESOURCE_KINDS = ("dataset", "model")
ACCESS_ACTIONS = ("SHARE", "UNSHARE")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_ORGANIZATION_CHARS = 128


def check_access_resource(resource_kind: str, resource_id: str) -> None:
    if resource_kind not in ACCESS_RESOURCE_KINDS:
        raise _invalid("resource_kind", f"expected one of {', '.join(ACCESS_RESOURCE_KINDS)}, got {resource_kind!r}",
                       "INVALID_RESOURCE_KIND")
    if not UUID_RE.fullmatch(resource_id):
        raise _invalid("resource_id", f"expected a lowercase UUID, got {resource_id[:64]!r}", "INVALID_RESOURCE_ID")


def check_access_event(spec: AccessEventSpec) -> AccessEventSpec:
    check_access_resource(spec.resource_kind, spec.resource_id)
    if spec.action not in ACCESS_ACTIONS:
        raise _invalid("action", f"expected SHARE or UNSHARE, got {spec.action!r}", "INVALID_ACTION")
    if not spec.grantee or len(spec.grantee) > MAX_ORGANIZATION_CHARS:
        raise _invalid("grantee", f"expected 1 to {MAX_ORGANIZATION_CHARS} characters", "INVALID_GRANTEE")
    if spec.public != (spec.grantee == "*"):
        raise _invalid("public", 'public is set exactly when the grantee is "*"', "INVALID_GRANTEE")
    if len(spec.actor_organization_id) > MAX_ORGANIZATION_CHARS:
        raise _invalid("actor_organization_id", f"longer than {MAX_ORGANIZATION_CHARS} characters",
                       "INVALID_ORGANIZATION")
    if spec.actor_subject_sha256:
        check_sha256("actor_subject_sha256", spec.actor_subject_sha256)
    if not 0 <= spec.event_time_micros < 2**63:
        raise _invalid("event_time_micros", "expected Unix microseconds >= 0", "INVALID_EVENT_TIME")
    return spec
