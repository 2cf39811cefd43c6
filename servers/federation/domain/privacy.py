"""Privacy spent by a federated job, computed with Google's `dp-accounting` from the mechanism
and its parameters. Nothing here trusts a framework's own claim: the figures follow from what
the job's spec makes the framework do.

Who is protected. A neighbouring dataset differs in one client's data (any change to one
teacher's shard, or one client joining or leaving): client-level privacy, the unit a federated
deployment promises to its members.

- FedPATE, Laplace: each of the `noise_data` queries releases the teachers' vote histogram with
  Laplace noise of scale b = 1/epsilon on every count (the seed's meaning of `epsilon`). One
  teacher changing its vote moves two counts by one, so the histogram's L1 sensitivity is 2 and
  one query is (2/b)-DP = (2·epsilon)-DP; the noisy argmax is post-processing. Queries compose
  by pure-DP composition: noise_data · 2·epsilon, delta = 0. The privacy-loss-distribution
  accountant's tighter (epsilon, delta) at the job's delta is reported beside it.
- FedPATE, Gaussian (GNMax): each count gets N(0, sigma²); L2 sensitivity sqrt(2), so a query is
  the Gaussian mechanism with noise multiplier sigma/sqrt(2); queries compose under RDP.
  Data-independent analysis: PATE's smooth-sensitivity refinements are not applied.
- DP-FedAvg (TFF): each round adds Gaussian noise of `noise_multiplier` times the clipping norm
  to the sum of clipped client updates, with clients sampled at rate q; Poisson subsampled
  Gaussian under RDP (a fixed number of clients per round is accounted as Poisson sampling at
  the same rate, as TFF and TF Privacy do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import dp_accounting
from dp_accounting import pld, rdp

DEFAULT_DELTA = 1e-5
LAPLACE = "laplacian"
GAUSSIAN = "gaussian"


@dataclass(frozen=True)
class PrivacyReport:
    """What a job spent (the contract's PrivacyReport)."""

    formal_guarantee: bool
    epsilon: float
    delta: float
    mechanism: str
    accountant: str
    compositions: int
    parameters: dict[str, str] = field(default_factory=dict)
    explanation: str = ""


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _rdp_epsilon(event: dp_accounting.DpEvent, delta: float, orders: Sequence[float] | None) -> float:
    accountant = rdp.RdpAccountant(orders=list(orders)) if orders is not None else rdp.RdpAccountant()
    accountant.compose(event)
    return float(accountant.get_epsilon(delta))


def _check(name: str, value: float, *, positive: bool = True) -> None:
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be a finite number {'>' if positive else '>='} 0, got {value}")


def _check_delta(delta: float) -> None:
    if not (0 < delta < 1):
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def fedpate_laplace(epsilon: float, queries: int, *, delta: float = DEFAULT_DELTA) -> PrivacyReport:
    """`queries` noisy-argmax answers with Laplace noise of scale 1/`epsilon` on every count."""
    _check("epsilon", epsilon)
    _check_delta(delta)
    if queries < 0:
        raise ValueError(f"queries must be >= 0, got {queries}")
    scale = 1.0 / epsilon
    # L1 sensitivity 2: dp-accounting's noise multiplier is scale / sensitivity.
    per_query = dp_accounting.LaplaceDpEvent(noise_multiplier=scale / 2.0)
    per_query_epsilon = 2.0 * epsilon
    pure = queries * per_query_epsilon
    params = {"laplace_scale": _fmt(scale), "l1_sensitivity": "2", "per_query_epsilon": _fmt(per_query_epsilon),
              "queries": str(queries)}
    if queries:
        accountant = pld.PLDAccountant()
        accountant.compose(dp_accounting.SelfComposedDpEvent(per_query, queries))
        params[f"pld_epsilon_at_delta_{delta:g}"] = _fmt(float(accountant.get_epsilon(delta)))
    return PrivacyReport(
        formal_guarantee=True, epsilon=pure, delta=0.0, mechanism="laplace noisy argmax (PATE)",
        accountant="pure-DP composition", compositions=queries, parameters=params,
        explanation=(f"client-level: one teacher's data changes the vote histogram by at most 2 in L1; each of the "
                     f"{queries} noisy-argmax queries is {_fmt(per_query_epsilon)}-DP, composed to "
                     f"{_fmt(pure)}-DP (delta 0)"))


def fedpate_gaussian(sigma: float, queries: int, *, delta: float = DEFAULT_DELTA,
                     orders: Sequence[float] | None = None) -> PrivacyReport:
    """`queries` GNMax answers with Gaussian noise of standard deviation `sigma` on every count."""
    _check("sigma", sigma)
    _check_delta(delta)
    if queries < 0:
        raise ValueError(f"queries must be >= 0, got {queries}")
    multiplier = sigma / math.sqrt(2.0)
    event = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(multiplier), queries)
    epsilon = _rdp_epsilon(event, delta, orders) if queries else 0.0
    return PrivacyReport(
        formal_guarantee=True, epsilon=epsilon, delta=delta, mechanism="gaussian noisy argmax (GNMax)",
        accountant="RDP", compositions=queries,
        parameters={"sigma": _fmt(sigma), "l2_sensitivity": _fmt(math.sqrt(2.0)), "noise_multiplier": _fmt(multiplier),
                    "queries": str(queries)},
        explanation=(f"client-level: one teacher's data changes the vote histogram by at most sqrt(2) in L2; "
                     f"{queries} Gaussian queries of noise multiplier {_fmt(multiplier)} composed under RDP "
                     "(data-independent bound)"))


def fedpate(noise: str, *, epsilon: float, sigma: float, queries: int,
            delta: float = DEFAULT_DELTA) -> PrivacyReport:
    """FedPATE's report for the seed's `noise` ("laplacian" or "gaussian")."""
    if noise == LAPLACE:
        return fedpate_laplace(epsilon, queries, delta=delta)
    if noise == GAUSSIAN:
        return fedpate_gaussian(sigma, queries, delta=delta)
    raise ValueError(f"noise must be {LAPLACE!r} or {GAUSSIAN!r}, got {noise!r}")


def dp_fedavg(noise_multiplier: float, sampling_rate: float, rounds: int, *, delta: float = DEFAULT_DELTA,
              orders: Sequence[float] | None = None) -> PrivacyReport:
    """`rounds` of DP-FedAvg: clipped client updates summed with Gaussian noise of
    `noise_multiplier` x the clip norm, clients sampled at `sampling_rate`. A noise multiplier
    of 0 adds no noise: no formal guarantee."""
    _check("noise_multiplier", noise_multiplier, positive=False)
    _check_delta(delta)
    if not (0 < sampling_rate <= 1):
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}")
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    params = {"noise_multiplier": _fmt(noise_multiplier), "sampling_rate": _fmt(sampling_rate), "rounds": str(rounds)}
    if noise_multiplier == 0:
        return no_guarantee("DP-FedAvg without noise", "dp_parameter (the noise multiplier) is 0: clipped updates "
                            "are aggregated without noise", compositions=rounds, parameters=params)
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
    step = gaussian if sampling_rate == 1 else dp_accounting.PoissonSampledDpEvent(sampling_rate, gaussian)
    epsilon = _rdp_epsilon(dp_accounting.SelfComposedDpEvent(step, rounds), delta, orders) if rounds else 0.0
    return PrivacyReport(
        formal_guarantee=True, epsilon=epsilon, delta=delta,
        mechanism="gaussian" if sampling_rate == 1 else "poisson-subsampled gaussian (DP-FedAvg)",
        accountant="RDP", compositions=rounds, parameters=params,
        explanation=(f"client-level: each client's clipped update has L2 norm at most the clip norm; {rounds} rounds "
                     f"of noise multiplier {_fmt(noise_multiplier)} at sampling rate {_fmt(sampling_rate)} under RDP"))


def no_guarantee(mechanism: str, reason: str, *, compositions: int = 0,
                 parameters: dict[str, str] | None = None) -> PrivacyReport:
    """A configuration that promises nothing formal; `reason` says why."""
    return PrivacyReport(formal_guarantee=False, epsilon=math.inf, delta=0.0, mechanism=mechanism, accountant="none",
                         compositions=compositions, parameters=dict(parameters or {}),
                         explanation=f"no formal differential-privacy guarantee: {reason}")


def flare_filter(privacy_filter: str, *, svt_epsilon: float = 0.0, rounds: int = 0,
                 parameters: dict[str, str] | None = None) -> PrivacyReport:
    """NVIDIA FLARE FedAvg with the DP filter `privacy_filter` ("none", "svt", "percentile") on
    every client's result.

    SVT (FLARE's `SVTPrivacy`): each client's update, clipped to [-gamma, gamma] per value, is
    released once a round through the sparse vector technique: a noisy threshold and noisy
    queries pick the values to share, Laplace noise is added to them. The job gives the filter
    `svt_epsilon` per release (half to threshold and queries, half to the release noise), so one
    round is svt_epsilon-DP for any change of one client's update (FLARE's own accountant says
    the same per call). A client's data reaches only its own updates, so rounds compose by
    pure-DP composition and clients in parallel: rounds x svt_epsilon, delta 0.
    Percentile (FLARE's `PercentilePrivacy`, Shokri and Shmatikov 2015) shares the largest
    changes without noise: no formal guarantee, and none without a filter."""
    params = {"privacy_filter": privacy_filter, "rounds": str(rounds), **(parameters or {})}
    if privacy_filter == "svt":
        _check("svt_epsilon", svt_epsilon)
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")
        params["per_round_epsilon"] = _fmt(svt_epsilon)
        total = rounds * svt_epsilon
        return PrivacyReport(
            formal_guarantee=True, epsilon=total, delta=0.0, mechanism="sparse vector technique (FLARE SVTPrivacy)",
            accountant="pure-DP composition", compositions=rounds, parameters=params,
            explanation=(f"client-level: each round one client's clipped update is released by SVT at "
                         f"{_fmt(svt_epsilon)}-DP; {rounds} rounds composed to {_fmt(total)}-DP (delta 0)"))
    if privacy_filter == "percentile":
        return no_guarantee("percentile privacy (FLARE PercentilePrivacy)",
                            "the percentile filter shares each client's largest update values without noise",
                            compositions=rounds, parameters=params)
    if privacy_filter == "none":
        return no_guarantee("FedAvg without a DP filter", "client updates are shared as they are (no DP filter "
                            "chosen)", compositions=rounds, parameters=params)
    raise ValueError(f"privacy_filter must be none, svt or percentile, got {privacy_filter!r}")
