"""The one resource-id parser (servers.common.ids): every server answers a bad id the same way."""

import uuid

import pytest

from servers.common import errors, ids


def test_parse_id_canonicalises():
    assert ids.parse_id("5D066D58-06DE-47AB-A2F6-C8F413E21947", "dataset_id") == "5d066d58-06de-47ab-a2f6-c8f413e21947"


def test_parse_uuid_returns_a_uuid():
    assert ids.parse_uuid("0B5E9A8E-5D1E-4A57-9A53-0F7D7E3F5D11", "job_id") == uuid.UUID(
        "0b5e9a8e-5d1e-4a57-9a53-0f7d7e3f5d11")


@pytest.mark.parametrize("bad", ["nope", "5d066d58", "../etc/passwd", "x" * 200])
def test_malformed_names_the_field(bad):
    with pytest.raises(errors.InvalidArgument, match="model_id .* is not a UUID") as info:
        ids.parse_id(bad, "model_id")
    assert info.value.reason == "MODEL_ID_MALFORMED"


def test_missing_names_the_field():
    with pytest.raises(errors.InvalidArgument, match="translation_id is required") as info:
        ids.parse_uuid("", "translation_id")
    assert info.value.reason == "TRANSLATION_ID_MISSING"
