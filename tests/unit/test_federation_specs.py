"""Federated job requests: validation naming the field (servers/federation/domain/specs.py) and
the proto <-> record converters (servers/federation/api/converters.py), seed bodies included."""

from __future__ import annotations

import dataclasses

import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb

from servers.common import errors
from servers.federation.api import converters
from servers.federation.domain import specs
from servers.federation.domain.records import (
    FederatedData,
    FedPateSpec,
    FlareSpec,
    JobRequest,
    Noise,
    Partition,
    PrivacyFilter,
    TffSpec,
)
from servers.federation.domain.privacy import fedpate_laplace

DATASET = "5d066d58-06de-47ab-a2f6-c8f413e21947"
FEDPATE = FedPateSpec(num_teachers=2, teacher_epochs=1, student_epochs=1, batch_size=16, epsilon=1.0,
                      num_queries=100, noise_data=60)


def request(spec=FEDPATE, **data) -> JobRequest:
    return JobRequest(spec=spec, data=FederatedData(dataset_id=DATASET, **data))


def refused(req: JobRequest) -> errors.InvalidArgument:
    with pytest.raises(errors.InvalidArgument) as info:
        specs.check_request(req)
    return info.value


def test_defaults_are_filled_in() -> None:
    checked = specs.check_request(request())
    assert checked.spec.num_rounds == 1 and checked.spec.learning_rate == 0.001 and checked.spec.delta == 1e-5
    assert checked.data.target_column == "target" and checked.data.server_fraction == 0.3


@pytest.mark.parametrize(("spec", "field"), [
    (dataclasses.replace(FEDPATE, num_teachers=0), "fedpate.num_teachers"),
    (dataclasses.replace(FEDPATE, epsilon=0.0), "fedpate.epsilon"),
    (dataclasses.replace(FEDPATE, epsilon=-1.0), "fedpate.epsilon"),
    (dataclasses.replace(FEDPATE, noise=Noise.GAUSSIAN), "fedpate.sigma"),
    (dataclasses.replace(FEDPATE, noise=Noise.GAUSSIAN, sigma=-2.0), "fedpate.sigma"),
    (dataclasses.replace(FEDPATE, noise_data=100), "fedpate.noise_data"),
    (dataclasses.replace(FEDPATE, noise_data=0), "fedpate.noise_data"),
    (dataclasses.replace(FEDPATE, net_name="resnet"), "fedpate.net_name"),
    (dataclasses.replace(FEDPATE, epsilon=float("nan")), "fedpate.epsilon"),
    (TffSpec(imb_parameter=0.5, dp_parameter=1.0, n_clients=0, n_samples=10), "tff.n_clients"),
    (TffSpec(imb_parameter=0.0, dp_parameter=1.0, n_clients=2, n_samples=10), "tff.imb_parameter"),
    (TffSpec(imb_parameter=0.5, dp_parameter=-1.0, n_clients=2, n_samples=10), "tff.dp_parameter"),
    (FlareSpec(epochs=1, batch_size=8, num_clients=0, num_rounds=1), "flare.num_clients"),
    (FlareSpec(epochs=1, batch_size=8, num_clients=2, num_rounds=1, privacy_filter=PrivacyFilter.SVT),
     "flare.svt_epsilon"),
])
def test_bad_spec_is_refused_naming_the_field(spec, field) -> None:
    err = refused(request(spec))
    assert err.metadata["field"] == field
    assert err.message.startswith(field)


def test_no_framework_is_refused() -> None:
    err = refused(JobRequest(spec=None, data=FederatedData(dataset_id=DATASET)))
    assert err.metadata["field"] == "spec" and "fedpate, tff, flare" in err.message


def test_dataset_is_required_and_must_be_an_id() -> None:
    assert refused(JobRequest(spec=FEDPATE, data=FederatedData())).reason == "DATASET_ID_MISSING"
    assert refused(JobRequest(spec=FEDPATE, data=FederatedData(dataset_id="cifar"))).reason == "DATASET_ID_MALFORMED"


def test_dirichlet_needs_a_positive_alpha() -> None:
    assert refused(request(partition=Partition.DIRICHLET)).metadata["field"] == "data.dirichlet_alpha"
    ok = specs.check_request(request(partition=Partition.DIRICHLET, dirichlet_alpha=0.5))
    assert ok.data.dirichlet_alpha == 0.5


def test_tff_target_label_becomes_the_target_column() -> None:
    checked = specs.check_request(request(TffSpec(imb_parameter=0.5, dp_parameter=1.0, n_clients=3, n_samples=50,
                                                  target_label="label")))
    assert checked.data.target_column == "label"
    assert checked.spec.clients_per_round == 3 and checked.spec.batch_size == 32


def test_specs_round_trip_through_proto() -> None:
    for spec in (specs.check_fedpate(FEDPATE),
                 TffSpec(imb_parameter=0.5, dp_parameter=1.1, n_clients=3, n_samples=50, target_label="y",
                         num_rounds=2, epochs=1, batch_size=8, clients_per_round=2, clip_norm=0.5, delta=1e-6),
                 FlareSpec(epochs=1, batch_size=8, num_clients=2, num_rounds=3, learning_rate=0.01,
                           privacy_filter=PrivacyFilter.SVT, svt_epsilon=0.1, homomorphic_encryption=True)):
        job = pb.FederatedJob()
        converters.spec_into_job(spec, job)
        assert converters.spec_from_job(pb.FederatedJob.FromString(job.SerializeToString())) == spec


def test_data_and_privacy_round_trip_through_proto() -> None:
    data = FederatedData(dataset_id=DATASET, target_column="y", partition=Partition.DIRICHLET, dirichlet_alpha=0.3,
                         server_fraction=0.25, seed=7)
    assert converters.data_from_proto(converters.data_to_proto(data)) == data
    report = fedpate_laplace(0.5, 10)
    assert converters.privacy_from_proto(converters.privacy_to_proto(report)) == report


def test_seed_fedpate_body_maps_field_for_field_and_drops_minio() -> None:
    # Prepare: the seed's body as Table 6 shows it, MinIO credentials included.
    body = pb.FedPateSeedBody(net_name="cnn", num_rounds=1, num_teachers=2, teacher_epochs=1, student_epochs=1,
                              batch_size=32, learning_rate=0.001, noise="gaussian", epsilon=0, sigma=20,
                              num_queries=100, noise_data=50, bucket_name="testminio", domain_name="minio.example",
                              access_key="AKIA-SEED", secret_key="s3cr3t-SEED")
    # Execute
    req = converters.request_from_proto(pb.CreateFederatedJobRequest(fp=body, dataset_id=DATASET,
                                                                     display_name="seed job"))
    # Assert: every parameter arrived, no credential did.
    assert req.spec == FedPateSpec(net_name="cnn", num_rounds=1, num_teachers=2, teacher_epochs=1, student_epochs=1,
                                   batch_size=32, learning_rate=0.001, noise=Noise.GAUSSIAN, sigma=20,
                                   num_queries=100, noise_data=50)
    assert req.data.dataset_id == DATASET and req.display_name == "seed job"
    for secret in ("AKIA-SEED", "s3cr3t-SEED", "testminio", "minio.example"):
        assert secret not in repr(req)
    specs.check_request(req)


def test_seed_tff_and_nv_bodies() -> None:
    tff = converters.request_from_proto(pb.CreateFederatedJobRequest(
        tff=pb.TffSeedBody(imb_parameter=0.5, dp_parameter=1.0, n_clients=3, n_samples=40, target_label="label",
                           minio_repo="http://minio", access_key="k", secret_key="s"), dataset_id=DATASET))
    assert tff.spec == TffSpec(imb_parameter=0.5, dp_parameter=1.0, n_clients=3, n_samples=40, target_label="label")
    nv = converters.request_from_proto(pb.CreateFederatedJobRequest(
        nv=pb.FlareSeedBody(epochs=1, batch_size=4, num_clients=2, num_rounds=1, secret_key="s"), dataset_id=DATASET))
    assert nv.spec == FlareSpec(epochs=1, batch_size=4, num_clients=2, num_rounds=1)


def test_unknown_seed_noise_and_ambiguous_forms_are_refused() -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        converters.request_from_proto(pb.CreateFederatedJobRequest(fp=pb.FedPateSeedBody(noise="uniform")))
    assert info.value.metadata["field"] == "fp.noise"
    with pytest.raises(errors.InvalidArgument) as info:
        converters.request_from_proto(pb.CreateFederatedJobRequest(job=pb.FederatedJob(), fp=pb.FedPateSeedBody()))
    assert info.value.reason == "JOB_AMBIGUOUS"
    with pytest.raises(errors.InvalidArgument) as info:
        converters.request_from_proto(pb.CreateFederatedJobRequest())
    assert info.value.reason == "JOB_MISSING"
