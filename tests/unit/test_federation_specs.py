"""Federated job requests: validation naming the field and filling in the defaults
(servers/federation/domain/specs.py)."""

from __future__ import annotations

import dataclasses

import pytest

from servers.common import errors
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
