"""The request validation every server runs (servers.common.validation): the contract's field
rules, their defaults, and the size of what an error may echo."""

import math

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from mlmesh.common.v1 import validation_pb2
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.registry.v1 import registry_service_pb2 as rpb
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as oip
from servers.common import errors
from servers.common.grpc_errors import MAX_MESSAGE_CHARS, to_status
from servers.common.validation import check_message, quote, rules_of
from tests.fuzz.descriptors import request_types


def _refusal(message) -> errors.InvalidArgument:
    with pytest.raises(errors.InvalidArgument) as caught:
        check_message(message)
    return caught.value


@pytest.mark.parametrize("message, field, reason", [
    (rpb.ListDatasetsRequest(organization_id="acme\x00"), "organization_id", "FIELD_CONTROL_CHARACTER"),
    (rpb.ListModelsRequest(dataset_id="a\x1bb"), "dataset_id", "FIELD_CONTROL_CHARACTER"),
    (lpb.ListLearnersRequest(organization_id="\x85acme"), "organization_id", "FIELD_CONTROL_CHARACTER"),
    (rpb.ReportTrainingStatusRequest(state=99), "state", "FIELD_UNKNOWN_ENUM_VALUE"),
    (rpb.UploadDatasetRequest(display_name="n" * 70_000), "display_name", "FIELD_TOO_LONG"),
    (rpb.GetDatasetRequest(dataset_id="d" * 257), "dataset_id", "FIELD_TOO_LONG"),
    (rpb.ListModelsRequest(page_size=-1), "page_size", "FIELD_TOO_SMALL"),
    (rpb.DownloadDatasetRequest(offset=-5), "offset", "FIELD_TOO_SMALL"),
    (rpb.ReportTrainingStatusRequest(failure_reason="oom\x00"), "failure_reason", "FIELD_CONTROL_CHARACTER"),
    (lpb.PredictRequest(inputs=[lpb.Observation(row=lpb.FeatureRow(values=[1.0, math.nan]))]),
     "inputs[0].row.values[1]", "FIELD_NOT_FINITE"),
    (lpb.LearnRequest(observations=[lpb.Observation(row=lpb.FeatureRow(values=[1.0]), target=-math.inf)]),
     "observations[0].target", "FIELD_NOT_FINITE"),
    (lpb.ExplainRequest(target_class=-1), "target_class", "FIELD_TOO_SMALL"),
    (lpb.CreateLearnerRequest(learner=lpb.Learner(spec=lpb.LearnerSpec(
        backend_params=struct_pb2.Struct(fields={"alpha": struct_pb2.Value(number_value=math.inf)})))),
     "learner.spec.backend_params.fields['alpha'].number_value", "FIELD_NOT_FINITE"),
    # found by `make fuzz`: a reading's time outside Timestamp's range was INTERNAL in the Learner
    (lpb.PredictRequest(inputs=[lpb.Observation(reading=lpb.SensorReading(time=timestamp_pb2.Timestamp(
        seconds=-(2**63))))]), "inputs[0].reading.time", "FIELD_OUT_OF_RANGE"),
    (lpb.PredictRequest(inputs=[lpb.Observation(reading=lpb.SensorReading(time=timestamp_pb2.Timestamp(
        seconds=0, nanos=-1)))]), "inputs[0].reading.time", "FIELD_OUT_OF_RANGE"),
    (oip.ModelInferRequest(parameters={"k\x00": oip.InferParameter(string_param="v")}),
     "parameters['k\\x00'] (key)", "FIELD_CONTROL_CHARACTER"),
    (oip.ModelInferRequest(inputs=[oip.ModelInferRequest.InferInputTensor(
        contents=oip.InferTensorContents(fp32_contents=[1.0, math.inf]))]),
     "inputs[0].contents.fp32_contents[1]", "FIELD_NOT_FINITE"),
])
def test_a_broken_rule_is_invalid_argument_naming_the_field(message, field, reason):
    refusal = _refusal(message)
    assert (refusal.reason, refusal.metadata["field"]) == (reason, field)
    assert refusal.message.startswith(field)
    assert len(refusal.message) < 400


@pytest.mark.parametrize("message", [
    rpb.UploadDatasetRequest(organization_id="smart-energy-ll", display_name="meter 7 — été", filename="a b.csv"),
    rpb.UploadDatasetRequest(display_name="n" * 512),  # the Registry's names may be 512 characters
    rpb.ReportTrainingStatusRequest(state=4, failure_reason="Traceback:\n\tline 1\r\n\x1b[31mred\x1b[0m"),
    rpb.ListModelsRequest(page_size=0),
    # output-only losses of a Learner echoed back (NaN before the first observation)
    lpb.CreateLearnerRequest(learner=lpb.Learner(running_loss=math.nan, validation_loss=math.inf)),
    # finite values whose sum overflows
    lpb.PredictRequest(inputs=[lpb.Observation(row=lpb.FeatureRow(values=[1e308, 1e308, -1e308]))]),
    oip.ModelInferRequest(inputs=[oip.ModelInferRequest.InferInputTensor(
        shape=[1, 2], contents=oip.InferTensorContents(int_contents=[-3, 4]))]),
    lpb.LearnRequest(observations=[lpb.Observation(image=lpb.ImageInput(data=b"\x00" * 1000))]),
    lpb.LearnRequest(observations=[lpb.Observation(reading=lpb.SensorReading(
        time=timestamp_pb2.Timestamp(seconds=253_402_300_799, nanos=999_999_999)))]),
])
def test_well_formed_messages_pass(message):
    check_message(message)


def test_every_rpc_accepts_its_empty_request():
    """No default rule refuses a message with nothing set (the servicer says what is missing)."""
    types = request_types()
    assert len(types) > 40
    for message_class in types.values():
        check_message(message_class())


def test_rules_come_from_the_contract_or_the_defaults():
    upload = rpb.UploadDatasetRequest.DESCRIPTOR.fields_by_name
    assert rules_of(upload["display_name"]).max_length == 512
    assert rules_of(upload["organization_id"]).max_length == 256  # the default
    assert rules_of(rpb.ListModelsRequest.DESCRIPTOR.fields_by_name["page_size"]).min_value == 0
    assert rules_of(rpb.ReportTrainingStatusRequest.DESCRIPTOR.fields_by_name["failure_reason"]).text
    assert rules_of(upload["chunk"]).min_value is None


def test_integer_sizes_offsets_and_page_sizes_declare_a_minimum():
    """Every integer request field named like a size, offset, limit or page size says it is
    never negative, in every service (a future one too)."""
    from google.protobuf.descriptor import FieldDescriptor

    seen, missing = set(), []

    def walk(descriptor):
        if descriptor.full_name in seen or not descriptor.full_name.startswith("mlmesh."):
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                walk(field.message_type)
            elif field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64) and any(
                    word in field.name for word in ("size", "offset", "limit", "page", "count", "window")):
                if rules_of(field).min_value is None:
                    missing.append(f"{descriptor.full_name}.{field.name}")

    for message_class in request_types().values():
        walk(message_class.DESCRIPTOR)
    assert not missing, f"annotate with [(mlmesh.common.v1.field).min_value = 0]: {missing}"


def test_the_option_is_declared_on_field_options():
    ext = validation_pb2.field
    assert ext.containing_type.full_name == "google.protobuf.FieldOptions"
    assert ext.message_type.full_name == "mlmesh.common.v1.FieldRules"


def test_quote_cuts_long_values():
    assert quote("abc") == "'abc'"
    cut = quote("x" * 10_000)
    assert len(cut) < 50 and cut.endswith("…'")


def test_statuses_never_carry_unbounded_text():
    exc = errors.InvalidArgument("display_name " + "x" * 70_000, reason="R" * 500,
                                 metadata={f"k{i}": "v" * 10_000 for i in range(100)})
    status = to_status(exc, "registry.mlmesh")
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(status.details) <= MAX_MESSAGE_CHARS
    assert sum(len(v) for _, v in status.trailing_metadata) < 8_000
