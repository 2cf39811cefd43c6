"""Federated job requests: validation naming the field (servers/federation/domain/specs.py) and
the proto <-> record converters (servers/federation/api/converters.py), seed bodies included."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb

from servers.common import errors
from servers.federation.api import converters
from servers.federation.domain import appconfig, jobs, service, specs
from servers.federation.domain.records import (
    FederatedData,
    FedPateSpec,
    FlareSpec,
    JobRequest,
    Noise,
    Partition,
    PrivacyFilter,
    QuerySelection,
    SemiSupervised,
    TffSpec,
)
from servers.federation.domain.privacy import fedpate_confident_gnmax, fedpate_gaussian, fedpate_laplace

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


# -- FedPATE's accuracy options (issue 11) ----------------------------------------------------

GNMAX = dataclasses.replace(FEDPATE, noise=Noise.GAUSSIAN, epsilon=0.0, sigma=4.0, num_teachers=10)
OPTIONS = dataclasses.replace(GNMAX, query_selection=QuerySelection.REPRESENTATIVE,
                              teacher_semi_supervised=SemiSupervised.LABEL_SPREADING,
                              student_semi_supervised=SemiSupervised.LABEL_SPREADING, threshold=7.0,
                              sigma_threshold=3.0)


def test_accuracy_options_are_accepted_and_reach_the_app_config(tmp_path: Path) -> None:
    checked = specs.check_request(request(OPTIONS))
    assert checked.spec.query_selection is QuerySelection.REPRESENTATIVE and checked.spec.threshold == 7.0
    config = appconfig.app_config(checked, data_path=tmp_path / "d.csv", output_dir=tmp_path / "out")
    assert (config["query-selection"], config["teacher-semi-supervised"], config["student-semi-supervised"],
            config["threshold"], config["sigma-threshold"]) == ("representative", "label-spreading",
                                                                 "label-spreading", 7.0, 3.0)
    # Off by default: the app's own defaults (first rows, none, none, every query answered).
    plain = appconfig.app_config(specs.check_request(request()), data_path=tmp_path / "d.csv",
                                 output_dir=tmp_path / "out")
    assert (plain["query-selection"], plain["teacher-semi-supervised"], plain["student-semi-supervised"],
            plain["threshold"], plain["sigma-threshold"]) == ("first", "none", "none", 0.0, 0.0)


@pytest.mark.parametrize(("spec", "field", "words"), [
    (dataclasses.replace(GNMAX, threshold=7.0), "fedpate.sigma_threshold", "together"),
    (dataclasses.replace(GNMAX, sigma_threshold=3.0), "fedpate.threshold", "together"),
    (dataclasses.replace(FEDPATE, threshold=1.0, sigma_threshold=1.0), "fedpate.threshold", "NOISE_GAUSSIAN"),
    (dataclasses.replace(GNMAX, threshold=11.0, sigma_threshold=3.0), "fedpate.threshold", "num_teachers"),
    (dataclasses.replace(GNMAX, threshold=-1.0, sigma_threshold=3.0), "fedpate.threshold", ">= 0"),
    (dataclasses.replace(GNMAX, threshold=5.0, sigma_threshold=float("nan")), "fedpate.sigma_threshold", ">= 0"),
    (dataclasses.replace(GNMAX, threshold=5.0, sigma_threshold=float("inf")), "fedpate.sigma_threshold", ">= 0"),
    (dataclasses.replace(GNMAX, num_queries=5000, noise_data=4001, query_selection=QuerySelection.REPRESENTATIVE),
     "fedpate.noise_data", "4000"),
    (dataclasses.replace(GNMAX, num_queries=5000, noise_data=4001,
                         student_semi_supervised=SemiSupervised.LABEL_SPREADING), "fedpate.noise_data", "4000"),
    (dataclasses.replace(GNMAX, query_selection="kmeans"), "fedpate.query_selection", "representative"),
])
def test_bad_accuracy_options_are_refused_naming_the_field(spec, field, words) -> None:
    error = refused(request(spec))
    assert error.metadata["field"] == field and field in error.message and words in error.message


def test_label_spreading_for_teachers_only_has_no_pool_limit() -> None:
    # The teachers spread over the capped pool whatever noise_data is: only the student's use is limited.
    spec = dataclasses.replace(GNMAX, num_queries=5000, noise_data=4001,
                               teacher_semi_supervised=SemiSupervised.LABEL_SPREADING)
    assert specs.check_request(request(spec)).spec.noise_data == 4001


def test_pool_cap_is_the_apps_own() -> None:
    source = (Path(__file__).parents[2] / "servers/federation/apps/fedpate/fedpate/server_app.py").read_text()
    assert re.search(r"^MAX_POOL = (\d+)", source, re.M).group(1) == str(specs.MAX_POOL)


def test_accuracy_options_round_trip_through_proto_and_json() -> None:
    job = pb.FederatedJob()
    converters.spec_into_job(OPTIONS, job)
    assert job.fedpate.query_selection == pb.FedPateSpec.QUERY_SELECTION_REPRESENTATIVE
    assert job.fedpate.student_semi_supervised == pb.FedPateSpec.SEMI_SUPERVISED_LABEL_SPREADING
    assert converters.spec_from_job(pb.FederatedJob.FromString(job.SerializeToString())) == OPTIONS
    req = request(OPTIONS)
    assert jobs.request_from_json(json.loads(json.dumps(jobs.request_to_json(req)))) == req
    # A record stored before the options existed reads back with them off.
    old = jobs.request_to_json(request(GNMAX))
    for key in ("query_selection", "teacher_semi_supervised", "student_semi_supervised", "threshold",
                "sigma_threshold"):
        del old["spec"][key]
    assert jobs.request_from_json(old) == request(GNMAX)


def test_unknown_option_enum_value_is_refused_naming_the_field() -> None:
    job = pb.FederatedJob(fedpate=pb.FedPateSpec(query_selection=9))
    with pytest.raises(errors.InvalidArgument) as info:
        converters.spec_from_job(job)
    assert info.value.metadata["field"] == "fedpate.query_selection"


def test_seed_body_takes_the_options_as_optional_strings() -> None:
    body = pb.FedPateSeedBody(num_teachers=10, teacher_epochs=1, student_epochs=1, batch_size=16, noise="gaussian",
                              sigma=4.0, num_queries=100, noise_data=60, query_selection="Representative",
                              student_semi_supervised="label-spreading", threshold=7.0, sigma_threshold=3.0)
    spec = converters.request_from_proto(pb.CreateFederatedJobRequest(fp=body, dataset_id=DATASET)).spec
    assert (spec.query_selection, spec.student_semi_supervised, spec.teacher_semi_supervised, spec.threshold,
            spec.sigma_threshold) == (QuerySelection.REPRESENTATIVE, SemiSupervised.LABEL_SPREADING,
                                      SemiSupervised.NONE, 7.0, 3.0)
    # An old body (none of the keys) is the plain PATE it always was.
    old = converters.request_from_proto(pb.CreateFederatedJobRequest(fp=pb.FedPateSeedBody(noise="gaussian"),
                                                                     dataset_id=DATASET)).spec
    assert (old.query_selection, old.student_semi_supervised, old.threshold) == (QuerySelection.FIRST,
                                                                                 SemiSupervised.NONE, 0.0)
    with pytest.raises(errors.InvalidArgument) as info:
        converters.request_from_proto(pb.CreateFederatedJobRequest(
            fp=pb.FedPateSeedBody(teacher_semi_supervised="self-training"), dataset_id=DATASET))
    assert info.value.metadata["field"] == "fp.teacher_semi_supervised" and "label-spreading" in info.value.message


# -- the privacy report with PATE's data-dependent figure -------------------------------------

# 6 queries x 3 classes from 10 teachers: mostly unanimous, one split query, one not answered.
COUNTS = [[10, 0, 0], [0, 9, 1], [0, 0, 10], [4, 3, 3], [10, 0, 0], [1, 8, 1]]
ANSWERED = [True, True, True, False, True, True]
VOTED = dataclasses.replace(OPTIONS, num_queries=10, noise_data=6, sigma=4.0, threshold=7.0, sigma_threshold=3.0)


def _votes(tmp_path: Path, spec: FedPateSpec = VOTED, **changes) -> Path:
    body = {"noise": "gaussian", "sigma": spec.sigma, "epsilon": 0.0, "threshold": spec.threshold,
            "sigma_threshold": spec.sigma_threshold, "counts": COUNTS, "answered": ANSWERED, **changes}
    path = tmp_path / "votes.json"
    path.write_text(json.dumps(body))
    return path


def test_report_adds_the_data_dependent_epsilon_beside_the_guarantee(tmp_path: Path) -> None:
    spec = specs.check_fedpate(VOTED)
    headline = service.FederationCore.final_privacy(request(spec))
    report, note = service.with_data_dependent(headline, spec, _votes(tmp_path, spec))
    expected = fedpate_confident_gnmax(np.array(COUNTS), ANSWERED, sigma=4.0, threshold=7.0, sigma_threshold=3.0,
                                       delta=spec.delta)
    assert note == ""
    # The headline stays the data-independent guarantee; the data-dependent figure sits beside it, labelled.
    assert report.epsilon == headline.epsilon and report.formal_guarantee
    assert float(report.parameters["data_dependent_epsilon"]) == pytest.approx(expected.epsilon, rel=1e-5)
    assert float(report.parameters["data_dependent_delta"]) == spec.delta
    assert "not sanitised" in report.parameters["data_dependent_accountant"]
    assert "not itself sanitised" in report.explanation and report.parameters["answered"] == "5"
    assert expected.epsilon < headline.epsilon


def test_confident_gnmax_guarantee_counts_every_threshold_check_and_answer(tmp_path: Path) -> None:
    # Before the run nobody knows which queries pass: the guarantee counts all of them answered,
    # which is the accountant's data-independent figure for the same queries all answered.
    spec = specs.check_fedpate(VOTED)
    headline = service.FederationCore.final_privacy(request(spec))
    all_answered = fedpate_confident_gnmax(np.array(COUNTS), [True] * 6, sigma=4.0, threshold=7.0,
                                           sigma_threshold=3.0, delta=spec.delta)
    assert headline.epsilon == pytest.approx(float(all_answered.parameters["data_independent_epsilon"]), rel=1e-4)
    assert headline.mechanism == "confident GNMax (PATE)" and headline.compositions == 6
    # The threshold checks cost something: more than GNMax's 6 answers alone.
    assert headline.epsilon > fedpate_gaussian(4.0, 6, delta=spec.delta).epsilon


@pytest.mark.parametrize(("changes", "words"), [
    ({"counts": COUNTS[:5], "answered": ANSWERED[:5]}, "noise_data"),
    ({"sigma": 9.0}, "sigma"),
    ({"counts": [[11, 0, 0]] + COUNTS[1:]}, "num_teachers"),
    ({"counts": [[1, "x", 0]] + COUNTS[1:]}, "vote counts"),
    ({"answered": [1] * 6}, "true/false"),
    ({"counts": None}, "lists"),
])
def test_malformed_votes_keep_the_guarantee_and_say_why(tmp_path: Path, changes, words) -> None:
    spec = specs.check_fedpate(VOTED)
    headline = service.FederationCore.final_privacy(request(spec))
    report, note = service.with_data_dependent(headline, spec, _votes(tmp_path, spec, **changes))
    assert report.epsilon == headline.epsilon and "data_dependent_epsilon" not in report.parameters
    assert words in note and note == report.parameters["data_dependent_note"] and note in report.explanation


def test_unreadable_missing_or_laplace_votes(tmp_path: Path) -> None:
    spec = specs.check_fedpate(VOTED)
    headline = service.FederationCore.final_privacy(request(spec))
    (tmp_path / "votes.json").write_text("{not json")
    report, note = service.with_data_dependent(headline, spec, tmp_path / "votes.json")
    assert report.epsilon == headline.epsilon and "unusable" in note
    # Nested past json's recursion limit: refused before parsing. The limit is raised as another library
    # in the process may have raised it (the full suite did): json's C scanner then overflowed the C
    # stack and killed the process before the check existed.
    (tmp_path / "votes.json").write_text('{"counts": ' + "[" * 100_000 + "]" * 100_000 + "}")
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        report, note = service.with_data_dependent(headline, spec, tmp_path / "votes.json")
    finally:
        sys.setrecursionlimit(old)
    assert report.epsilon == headline.epsilon and "unusable" in note and "nests 100001 levels" in note
    report, note = service.with_data_dependent(headline, spec, tmp_path / "absent.json")
    assert report == headline and "no votes.json" in note
    laplace = specs.check_fedpate(FEDPATE)
    plain = service.FederationCore.final_privacy(request(laplace))
    assert service.with_data_dependent(plain, laplace, _votes(tmp_path)) == (plain, "")


def test_gnmax_without_threshold_gets_the_data_dependent_figure(tmp_path: Path) -> None:
    spec = specs.check_fedpate(dataclasses.replace(GNMAX, num_queries=10, noise_data=6))
    headline = service.FederationCore.final_privacy(request(spec))
    report, note = service.with_data_dependent(headline, spec, _votes(tmp_path, spec, answered=[True] * 6))
    expected = fedpate_confident_gnmax(np.array(COUNTS), [True] * 6, sigma=4.0, threshold=None,
                                       sigma_threshold=None, delta=spec.delta)
    assert note == "" and report.epsilon == headline.epsilon == fedpate_gaussian(4.0, 6, delta=spec.delta).epsilon
    assert float(report.parameters["data_dependent_epsilon"]) == pytest.approx(expected.epsilon, rel=1e-5)
