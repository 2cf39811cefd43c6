"""The job state machine, limits, ids, and the proto<->domain converters (round trips)."""

from __future__ import annotations

import datetime as dt

import pytest
from mlmesh.trainer.v1 import trainer_service_pb2 as pb

from servers.common import errors
from servers.trainer.api import converters as conv
from servers.trainer.domain import jobs as J
from servers.trainer.domain.ports import DatasetInfo
from servers.trainer.domain.steps import dataset_file_name

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


def job(**changes) -> J.Job:
    values = dict(job_id="0b5e9a8e-5d1e-4a57-9a53-0f7d7e3f5d11", model_id="7c1d2a43-1b64-4cc1-9f7b-2b8f9bb4c0a2",
                  state=J.QUEUED, executor="local", time_limit_seconds=60, memory_limit_bytes=1 << 30,
                  create_time=T0)
    values.update(changes)
    return J.Job(**values)


def test_the_happy_path_walks_the_three_steps():
    j = job()
    for state in (J.PRE_TRAINING, J.TRAINING, J.POST_TRAINING, J.SUCCEEDED):
        j = j.moved(state, now=T0 + dt.timedelta(seconds=1))
    assert j.state == J.SUCCEEDED and j.final and j.start_time and j.end_time


@pytest.mark.parametrize("old, new", [
    (J.QUEUED, J.TRAINING), (J.QUEUED, J.SUCCEEDED), (J.PRE_TRAINING, J.POST_TRAINING),
    (J.TRAINING, J.SUCCEEDED), (J.TRAINING, J.PRE_TRAINING), (J.SUCCEEDED, J.FAILED), (J.FAILED, J.QUEUED),
    (J.CANCELLED, J.FAILED), (J.FAILED, J.FAILED),
])
def test_forbidden_transitions(old, new):
    with pytest.raises(errors.FailedPrecondition):
        job(state=old).moved(new, now=T0)


@pytest.mark.parametrize("state", sorted(J.LIVE_STATES))
def test_every_live_state_can_fail_or_be_cancelled(state):
    assert job(state=state).moved(J.FAILED, now=T0, failure_reason="x").failure_reason == "x"
    assert job(state=state).moved(J.CANCELLED, now=T0).end_time == T0


def test_limits_default_and_cap():
    limits = J.Limits(3600, 86400, 4 << 30, 16 << 30)
    assert limits.resolve(0, 0) == (3600, 4 << 30)
    assert limits.resolve(10, 1 << 20) == (10, 1 << 20)
    for args, reason in (((86401, 0), "TIME_LIMIT_TOO_HIGH"), ((0, 17 << 30), "MEMORY_LIMIT_TOO_HIGH"),
                         ((-1, 0), "TIME_LIMIT_INVALID"), ((0, -5), "MEMORY_LIMIT_INVALID")):
        with pytest.raises(errors.InvalidArgument) as info:
            limits.resolve(*args)
        assert info.value.reason == reason


@pytest.mark.parametrize("j", [
    job(),
    job(state=J.FAILED, failure_reason="boom", framework="sklearn", dataset_id="d", start_time=T0, end_time=T0),
    job(state=J.TRAINING, executor="argo", start_time=T0),
    job(purpose=J.REPRODUCTION),
    job(state=J.SUCCEEDED, purpose=J.REPRODUCTION, start_time=T0, end_time=T0, reproduction=J.Reproduction(
        J.IDENTICAL, "a" * 64, "b" * 32, "a" * 64, method="byte-identical")),
    job(state=J.SUCCEEDED, purpose=J.REPRODUCTION, start_time=T0, end_time=T0, reproduction=J.Reproduction(
        J.DIFFERENT, "a" * 64, "b" * 32, "c" * 64, max_abs_diff=0.25, compared_samples=1797, top1_agreement=0.98,
        method="both run")),
])
def test_job_round_trips(j):
    assert conv.job_from_proto(conv.job_to_proto(j)) == j
    proto = conv.job_to_proto(j)
    assert conv.job_to_proto(conv.job_from_proto(proto)) == proto


def test_states_round_trip_and_unknown_is_refused():
    for state in J.STATES:
        assert conv.state_from_proto(conv.state_to_proto(state)) == state
    with pytest.raises(ValueError):
        conv.state_from_proto(pb.TrainingJob.STATE_UNSPECIFIED)


def test_log_lines_and_events_round_trip():
    line = J.LogLine(3, T0, "stderr", "Traceback (most recent call last):")
    assert conv.log_line_from_proto(conv.log_line_to_proto(line)) == line
    assert conv.event_from_proto(conv.event_to_proto(line)) == line
    assert conv.event_from_proto(conv.event_to_proto(job())) == job()
    with pytest.raises(ValueError):
        conv.event_from_proto(pb.TrainingJobEvent())


def test_reproduction_round_trips_through_its_stored_json():
    r = J.Reproduction(J.DIFFERENT, "a" * 64, "b" * 32, "c" * 64, 1.5e-3, 360, -1.0, "m")
    assert J.Reproduction.from_json(r.to_json()) == r


def test_reproduce_request_round_trips():
    args = ("7c1d2a43-1b64-4cc1-9f7b-2b8f9bb4c0a2", 60, 1 << 27)
    assert conv.reproduce_request_from_proto(conv.reproduce_request_to_proto(*args)) == args


def test_a_reproduction_on_synthetic_inputs_says_so():
    from servers.trainer.domain.reproduce import reproduction_from_report

    report = {"ok": True, "max_abs_diff": 0.5, "differences": {"max_abs_diff": 0.5, "top1_agreement": None},
              "batch": {"source": "synthetic", "samples": 256, "description": "256 seeded normal samples"}}
    r = reproduction_from_report(report, res_hash="h", res_sha256="s", reproduced_sha256="t")
    assert (r.outcome, r.max_abs_diff, r.compared_samples, r.top1_agreement) == (J.DIFFERENT, 0.5, 256, -1.0)
    assert "synthetic inputs, not the dataset's rows" in r.method


def test_submit_request_round_trips():
    args = ("7c1d2a43-1b64-4cc1-9f7b-2b8f9bb4c0a2", 120, 1 << 28)
    assert conv.submit_request_from_proto(conv.submit_request_to_proto(*args)) == args


@pytest.mark.parametrize("filename, content_type, expected", [
    ("readings.csv", "text/csv", "dataset.csv"),
    ("C:\\data\\digits.npz", "", "dataset.npz"),
    ("archive.csv.gz", "", "dataset.csv.gz"),
    ("", "text/csv", "dataset.csv"),
    ("", "application/x-unknown-thing", "dataset"),
    ("weird.$(rm)", "", "dataset"),
])
def test_dataset_file_names_keep_a_safe_extension(filename, content_type, expected):
    assert dataset_file_name(DatasetInfo("d", "0" * 64, 1, content_type, filename)) == expected
