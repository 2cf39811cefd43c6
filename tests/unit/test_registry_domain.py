"""Registry domain rules that need no I/O."""

import pytest

from servers.common import errors
from servers.registry.domain.datasets import UploadMetadata, validate_metadata


def test_metadata_defaults():
    meta = validate_metadata(UploadMetadata("org", " name "), caller_org=None)
    assert meta.display_name == "name" and meta.content_type == "application/octet-stream"


def test_metadata_org_defaults_to_the_callers():
    assert validate_metadata(UploadMetadata("", "n"), caller_org="acme").organization_id == "acme"


@pytest.mark.parametrize(
    "meta, caller, exc, reason",
    [
        (UploadMetadata("", "n"), None, errors.InvalidArgument, "METADATA_MISSING"),
        (UploadMetadata("org", ""), None, errors.InvalidArgument, "METADATA_MISSING"),
        (UploadMetadata("other", "n"), "acme", errors.PermissionDenied, "ORGANIZATION_MISMATCH"),
        (UploadMetadata("org", "n", expected_md5="xyz"), None, errors.InvalidArgument, "EXPECTED_HASH_MALFORMED"),
        (UploadMetadata("org", "n", expected_sha256="a" * 63), None, errors.InvalidArgument,
         "EXPECTED_HASH_MALFORMED"),
        (UploadMetadata("org", "n" * 600), None, errors.InvalidArgument, "FIELD_TOO_LONG"),
    ],
)
def test_metadata_rejections(meta, caller, exc, reason):
    with pytest.raises(exc) as info:
        validate_metadata(meta, caller_org=caller)
    assert info.value.reason == reason
