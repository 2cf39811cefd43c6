"""What a FLARE job reports about privacy, by filter: SVT has a formal epsilon (FLARE's per-release
budget composed over the rounds, pure DP), percentile privacy and no filter have none."""

from __future__ import annotations

import math

import pytest

from servers.federation.domain import privacy
from servers.federation.domain.records import FederatedData, FlareSpec, JobRequest, PrivacyFilter
from servers.federation.domain.service import FederationCore, _privacy_so_far


def flare_request(**spec) -> JobRequest:
    values = dict(epochs=1, batch_size=8, num_clients=2, num_rounds=4)
    values.update(spec)
    return JobRequest(spec=FlareSpec(**values), data=FederatedData(dataset_id="x"))


def test_svt_composes_its_per_round_budget_over_the_rounds() -> None:
    report = privacy.flare_filter("svt", svt_epsilon=0.25, rounds=4)
    assert report.formal_guarantee and report.delta == 0.0
    assert report.epsilon == pytest.approx(1.0) and report.compositions == 4
    assert report.parameters["per_round_epsilon"] == "0.25" and report.accountant == "pure-DP composition"


@pytest.mark.parametrize("kind", ["percentile", "none"])
def test_percentile_and_no_filter_promise_nothing(kind) -> None:
    report = privacy.flare_filter(kind, rounds=3)
    assert not report.formal_guarantee and math.isinf(report.epsilon)
    assert report.explanation.startswith("no formal differential-privacy guarantee")


def test_bad_filter_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        privacy.flare_filter("svt", svt_epsilon=0.0, rounds=1)
    with pytest.raises(ValueError):
        privacy.flare_filter("laplace", rounds=1)


def test_a_flare_job_reports_the_rounds_done_so_far_and_the_whole_run_at_create() -> None:
    request = flare_request(privacy_filter=PrivacyFilter.SVT, svt_epsilon=0.5)
    assert FederationCore.final_privacy(request).epsilon == pytest.approx(2.0)
    assert _privacy_so_far(request, 0, 1).epsilon == pytest.approx(0.5)
    assert _privacy_so_far(request, 0, 99).epsilon == pytest.approx(2.0)  # never beyond num_rounds
    assert not FederationCore.final_privacy(flare_request()).formal_guarantee
    assert not _privacy_so_far(flare_request(privacy_filter=PrivacyFilter.PERCENTILE), 0, 1).formal_guarantee
