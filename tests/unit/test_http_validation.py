"""The gRPC field rules applied to what the HTTP fronts receive: the Registry's multipart metadata
(servers/registry/api/forms.py, onto UploadDatasetRequest / CreateModelRequest) and the Open
Inference Protocol's JSON (servers/learner/api/oip_rest.py, onto ModelInferRequest)."""

from __future__ import annotations

import json

import pytest
from mlmesh.registry.v1 import registry_service_pb2 as svc

from servers.common import errors, validation
from servers.learner.api import oip_rest
from servers.registry.api import forms


def _refused(call) -> errors.InvalidArgument:
    with pytest.raises(errors.InvalidArgument) as caught:
        call()
    assert len(caught.value.message) < 400
    return caught.value


@pytest.mark.parametrize("meta, field, reason", [
    ({"organization_id": "o\x00"}, "organization_id", "FIELD_CONTROL_CHARACTER"),
    ({"display_name": "d" * 513}, "display_name", "FIELD_TOO_LONG"),
    ({"samples_dimension": "(1,\n2)"}, "samples_dimension", "FIELD_CONTROL_CHARACTER"),
    ({"expected_md5": "m" * 70_000}, "expected_md5", "FIELD_TOO_LONG"),
])
def test_dataset_metadata_follows_upload_datasets_rules(meta, field, reason):
    form = forms.parse_metadata(json.dumps(meta).encode(), forms.DatasetForm, forms.DATASET_EXAMPLE)
    exc = _refused(lambda: forms.upload_metadata_from_form(form, filename="f.csv", content_type="text/csv"))
    assert (exc.reason, exc.metadata["field"]) == (reason, field)


def test_a_file_name_from_the_file_part_is_checked_too():
    exc = _refused(lambda: forms.upload_metadata_from_form(forms.DatasetForm(), filename="a\x1bb.csv",
                                                           content_type="text/csv"))
    assert exc.metadata["field"] in ("display_name", "filename")


@pytest.mark.parametrize("params, field, reason", [
    ({"time_limit_seconds": -1}, "time_limit_seconds", "FIELD_TOO_SMALL"),
    ({"memory_limit_bytes": 2 ** 70}, "memory_limit_bytes", "FIELD_WRONG_TYPE"),
    ({"developer_id": "\x7f"}, "developer_id", "FIELD_CONTROL_CHARACTER"),
])
def test_model_metadata_follows_create_models_rules(params, field, reason):
    form = forms.ModelForm(model_params=forms.ModelParams(**params))
    exc = _refused(lambda: forms.create_model_from_form(form, train_image="img"))
    assert (exc.reason, exc.metadata["field"]) == (reason, field)


def test_an_image_reference_over_its_limit_is_refused():
    exc = _refused(lambda: forms.create_model_from_form(forms.ModelForm(), train_image="i" * 600))
    assert exc.metadata["field"] in ("display_name", "image_reference")


def test_check_fields_ignores_unmapped_keys_and_prefixes_the_path():
    validation.check_fields({"not_a_field": "\x00", "organization_id": "ok"}, svc.UploadDatasetRequest)
    exc = _refused(lambda: validation.check_fields({"display_name": 5}, svc.UploadDatasetRequest, "metadata."))
    assert (exc.reason, exc.metadata["field"]) == ("FIELD_WRONG_TYPE", "metadata.display_name")


def _infer(tensor: dict, **top) -> bytes:
    return json.dumps({"inputs": [tensor], **top}).encode()


@pytest.mark.parametrize("body, reason", [
    (_infer({"name": "x", "datatype": "FP64", "shape": [10 ** 9, 10 ** 9], "data": [1]}), "SHAPE"),
    (_infer({"name": "x", "datatype": "FP64", "shape": [-1, 4], "data": [1]}), "SHAPE"),
    (_infer({"name": "x", "datatype": "FP64", "shape": [1] * 40, "data": [1]}), "SHAPE"),
    (_infer({"name": "x", "datatype": "FP64", "shape": [2 ** 64, 1], "data": [1]}), "FIELD_WRONG_TYPE"),
    (_infer({"name": "x\x00", "datatype": "FP64", "shape": [1, 1], "data": [1]}), "FIELD_CONTROL_CHARACTER"),
    (_infer({"name": "x", "datatype": "F" * 300, "shape": [1, 1], "data": [1]}), "FIELD_TOO_LONG"),
    (_infer({"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [1]}, id="i" * 1000), "FIELD_TOO_LONG"),
    (_infer({"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [1]}, id=7), "FIELD_WRONG_TYPE"),
    (b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [NaN]}]}', "JSON_NOT_FINITE"),
])
def test_hostile_inference_json_is_invalid_argument(body, reason):
    exc = _refused(lambda: oip_rest.input_tensor(*oip_rest.parse_infer_body(body, None), max_elements=len(body)))
    assert exc.reason == reason


@pytest.mark.parametrize("length", ["9" * 5000, "²", "-1", "99999999999999999999999"])
def test_a_bad_header_length_is_invalid_argument(length):
    assert _refused(lambda: oip_rest.parse_infer_body(b"{}", length)).reason == "HEADER_LENGTH"


def test_a_well_formed_tensor_passes():
    body = _infer({"name": "x", "datatype": "FP64", "shape": [2, 2], "data": [1, 2, 3, 4.5]}, id="r1")
    assert oip_rest.input_tensor(*oip_rest.parse_infer_body(body, None), max_elements=len(body))[:3] == (
        "FP64", [2, 2], [1, 2, 3, 4.5])


def test_json_nested_past_the_limit_is_refused_before_parsing_even_with_a_raised_recursion_limit():
    # CPython's json decoder recurses on the C stack: with a raised recursion limit a deep body used to
    # crash the process (a segfault in CI) instead of raising RecursionError.
    import sys

    from servers.common import errors as mesh_errors
    from servers.common.http import MAX_JSON_DEPTH, json_too_deep, loads_json
    from servers.registry.api.forms import parse_metadata

    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert not json_too_deep(b'{"a": "' + b"[" * 500 + b'"}')  # brackets inside a string do not nest
    assert not json_too_deep(b'{"a": "\\"' + b"[" * 500 + b'"}')  # nor after an escaped quote
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        deep = b"[" * 200_000 + b"]" * 200_000
        with pytest.raises(mesh_errors.InvalidArgument, match="nested more than"):
            loads_json(deep)
        with pytest.raises(mesh_errors.InvalidArgument, match="nests more than"):
            parse_metadata(b'{"a": ' + deep + b"}", object, "{}")
    finally:
        sys.setrecursionlimit(old)
