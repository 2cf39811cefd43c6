"""Federated jobs: the state machine, the JSON form stored in PostgreSQL, the job/event
converters (round trips), and the one spec -> app configuration mapping."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb

from servers.common import errors
from servers.federation.api import converters
from servers.federation.domain import appconfig, specs
from servers.federation.domain import jobs as J
from servers.federation.domain.privacy import fedpate_laplace, no_guarantee
from servers.federation.domain.records import FederatedData, FedPateSpec, FlareSpec, JobRequest, Partition, TffSpec

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
DATASET = "5d066d58-06de-47ab-a2f6-c8f413e21947"
REQUEST = specs.check_request(JobRequest(
    spec=FedPateSpec(num_teachers=2, teacher_epochs=1, student_epochs=1, batch_size=16, epsilon=0.5,
                     num_queries=40, noise_data=20),
    data=FederatedData(dataset_id=DATASET, partition=Partition.DIRICHLET, dirichlet_alpha=0.5, seed=3),
    display_name="fp", developer_id="dev", time_limit_seconds=60, memory_limit_bytes=1 << 30))


def job(**changes) -> J.Job:
    base = J.Job(job_id="1f0c7a53-9f3a-4d1e-8a47-3a4f1e3c2b10", organization_id="org", request=REQUEST,
                 state=J.State.RUNNING, executor="local", time_limit_seconds=60, memory_limit_bytes=1 << 30,
                 create_time=T0, start_time=T0, framework_version="flwr 1.42.0",
                 rounds=(J.RoundMetrics(round=1, clients=(J.ClientMetrics("client-0", 0.5, 0.9, 10),), loss=math.nan,
                                        accuracy=0.8, privacy=fedpate_laplace(0.5, 20), seconds=1.5),),
                 privacy=no_guarantee("x", "y"),
                 commitments=(J.ClientCommitment("client-0", "ab" * 32, 10),))
    return J.Job(**{**base.__dict__, **changes})


def test_states_move_one_step_forward_or_end() -> None:
    assert J.can_move(J.State.QUEUED, J.State.PREPARING) and J.can_move(J.State.RUNNING, J.State.CANCELLED)
    assert not J.can_move(J.State.QUEUED, J.State.RUNNING)
    assert not J.can_move(J.State.FAILED, J.State.CANCELLED)
    with pytest.raises(errors.FailedPrecondition, match="has already ended"):
        job(state=J.State.SUCCEEDED).moved(J.State.CANCELLED, now=T0)
    ended = job().moved(J.State.FAILED, now=T0 + dt.timedelta(seconds=5), failure_reason="why")
    assert ended.end_time == T0 + dt.timedelta(seconds=5) and ended.failure_reason == "why"


def test_the_json_form_round_trips_infinities_and_nan_included() -> None:
    j = job()
    for spec in (REQUEST.spec, TffSpec(imb_parameter=0.5, dp_parameter=1.0, n_clients=2, n_samples=5),
                 FlareSpec(epochs=1, batch_size=2, num_clients=2, num_rounds=1)):
        request = JobRequest(spec=spec, data=REQUEST.data)
        assert J.request_from_json(J.request_to_json(request)) == request
    assert J.privacy_from_json(J.privacy_to_json(j.privacy)).epsilon == math.inf
    back = J.rounds_from_json(J.rounds_to_json(j.rounds))
    assert math.isnan(back[0].loss) and back[0].privacy == j.rounds[0].privacy and back[0].clients == j.rounds[0].clients
    assert J.commitments_from_json(J.commitments_to_json(j.commitments)) == j.commitments


def test_job_and_events_round_trip_through_proto() -> None:
    j = job(rounds=(J.RoundMetrics(round=1, loss=0.25, accuracy=0.75, privacy=fedpate_laplace(0.5, 20)),))
    message = pb.FederatedJob.FromString(converters.job_to_proto(j).SerializeToString())
    assert converters.job_from_proto(message) == j
    line = J.LogLine(3, T0, "stdout", "hello")
    assert converters.log_from_proto(converters.event_to_proto(line).log) == line
    assert converters.event_to_proto(j.rounds[0]).round.privacy.compositions == 20


def test_limits_name_the_field() -> None:
    limits = J.Limits(60, 120, 1 << 20, 1 << 30)
    assert limits.resolve(0, 0) == (60, 1 << 20)
    with pytest.raises(errors.InvalidArgument, match="time_limit_seconds"):
        limits.resolve(121, 0)


def test_the_app_configuration_is_flat_and_carries_the_seed_parameters() -> None:
    config = appconfig.app_config(REQUEST, data_path=Path("/d.csv"), output_dir=Path("/out"))
    assert all(isinstance(v, (int, float, str, bool)) for v in config.values())
    assert config["num-teachers"] == 2 and config["epsilon"] == 0.5 and config["noise-data"] == 20
    assert config["partition"] == "dirichlet" and config["dirichlet-alpha"] == 0.5 and config["seed"] == 3
