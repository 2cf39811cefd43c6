"""The issue's hostile inputs through the front door of the stack: each is a clean
INVALID_ARGUMENT (REST: 400) with a short message, never Envoy's "upstream connect error", and
nothing is stored."""

from __future__ import annotations

import grpc
import httpx
from google.api import httpbody_pb2
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.learner.v1 import learner_service_pb2_grpc as lgrpc
from mlmesh.registry.v1 import registry_service_pb2 as rpb
from mlmesh.registry.v1 import registry_service_pb2_grpc as rgrpc

from servers.common.grpc_errors import MAX_MESSAGE_CHARS, error_info

ORG = "hostile-input-ll"


def _refused(call, *args, **kwargs) -> grpc.RpcError:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as err:
        return err
    raise AssertionError("the call succeeded")


def test_nul_in_list_filters_through_envoy_and_direct(stack):
    token = (("authorization", f"Bearer {stack.token(ORG)}"),)
    with grpc.insecure_channel(stack.envoy) as channel:
        registry, learner = rgrpc.RegistryServiceStub(channel), lgrpc.LearnerServiceStub(channel)
        for call, request in ((registry.ListDatasets, rpb.ListDatasetsRequest(organization_id="a\x00b")),
                              (registry.ListModels, rpb.ListModelsRequest(organization_id="a\x00b")),
                              (learner.ListLearners, lpb.ListLearnersRequest(organization_id="a\x00b"))):
            err = _refused(call, request, metadata=token, timeout=30)
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
            assert error_info(err).reason == "FIELD_CONTROL_CHARACTER"
    with grpc.secure_channel(stack.server_target("learner"), stack.client_credentials()) as channel:
        err = _refused(lgrpc.LearnerServiceStub(channel).ListLearners,
                       lpb.ListLearnersRequest(organization_id="a\x00b"), timeout=30)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()


def test_undefined_enum_to_the_registry(stack):
    # ReportTrainingStatus is internal: sent as the Trainer, the only component that may.
    with grpc.secure_channel(stack.server_target("registry"), stack.client_credentials("trainer")) as channel:
        err = _refused(rgrpc.RegistryServiceStub(channel).ReportTrainingStatus, rpb.ReportTrainingStatusRequest(
            model_id="5d066d58-06de-47ab-a2f6-c8f413e21947", state=17), timeout=30)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(err).reason == "FIELD_UNKNOWN_ENUM_VALUE"


def test_a_70000_character_name_through_envoy(stack):
    token = (("authorization", f"Bearer {stack.token(ORG)}"),)
    long_name = "n" * 70_000
    with grpc.insecure_channel(stack.envoy) as channel:
        registry = rgrpc.RegistryServiceStub(channel)
        err = _refused(registry.UploadDataset, iter([rpb.UploadDatasetRequest(
            organization_id=ORG, display_name=long_name, chunk=httpbody_pb2.HttpBody(data=b"a\n1\n"))]),
            metadata=token, timeout=30)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
        assert len(err.details()) <= MAX_MESSAGE_CHARS
        err = _refused(registry.CreateModel, iter([rpb.CreateModelRequest(
            organization_id=ORG, developer_id="dev", dataset_id="5d066d58-06de-47ab-a2f6-c8f413e21947",
            display_name=long_name, image_reference="x")]), metadata=token, timeout=30)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
        listed = registry.ListDatasets(rpb.ListDatasetsRequest(organization_id=ORG), metadata=token, timeout=30)
        assert list(listed.datasets) == []
    # REST: the name in a JSON body rather than the query string (which Envoy caps at 60 KiB of headers)
    response = httpx.post(f"{stack.base_url}/v1/learners", headers=stack.auth(ORG), timeout=30,
                          json={"display_name": long_name, "organization_id": ORG})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("learner.display_name is too long")
    assert len(response.text) < 2_000
    response = httpx.get(f"{stack.base_url}/v1/datasets", params={"organization_id": "a\x00b"},
                         headers=stack.auth(ORG), timeout=30)
    assert response.status_code == 400, response.text
