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
- FedPATE, Confident-GNMax with PATE's data-dependent analysis (Papernot et al. 2018, "Scalable
  Private Learning with PATE"): every query first passes a noisy threshold (the top count plus
  N(0, sigma_threshold²) must reach `threshold`; L2 sensitivity 1), and only the queries that pass
  are answered by GNMax. `fedpate_confident_gnmax` accounts for it from the vote histograms: the
  data-independent RDP of each step (dp-accounting's Gaussian), and where the teachers agree, the
  smaller data-dependent RDP of Theorem 6 with the higher orders of Proposition 7, order by order;
  the sum is converted to (epsilon, delta) by dp-accounting. That figure depends on the private
  votes themselves, so it is not a differentially private release (the paper sanitises it with
  smooth sensitivity; not done here): it is reported beside the data-independent figure, never
  instead of saying so.
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
import numpy as np
from dp_accounting import pld, rdp
from dp_accounting.rdp import rdp_privacy_accountant

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


# RDP orders for the data-dependent analysis: dp-accounting's defaults (1.1 .. 1024), which
# Theorem 6 can only improve at orders below its mu1 (the data-independent curve is kept elsewhere).
PATE_ORDERS: tuple[float, ...] = tuple(rdp_privacy_accountant.DEFAULT_RDP_ORDERS)


def _log_gaussian_tail(z: float) -> float:
    """log Pr[N(0, 1) >= z], accurate far into the tail (erfc underflows past z ~ 38)."""
    if z < 20:
        return math.log(0.5 * math.erfc(z / math.sqrt(2.0)))
    # Asymptotic series of Mills' ratio; its next term is below 1e-7 relative at z = 20.
    return -z * z / 2 - math.log(z * math.sqrt(2 * math.pi)) + math.log1p(-1 / z**2 + 3 / z**4 - 15 / z**6)


def _log1mexp(x: float) -> float:
    """log(1 - e^x) for x <= 0."""
    if x > 0:
        raise ValueError(f"log(1 - e^x) needs x <= 0, got {x}")
    if x == 0:
        return -math.inf
    return math.log1p(-math.exp(x)) if x < -math.log(2) else math.log(-math.expm1(x))


def gnmax_log_q(counts: Sequence[float], sigma: float) -> float:
    """log of an upper bound on Pr[GNMax(counts) is not the top class] (Papernot et al. 2018,
    Proposition 7's union bound): sum over the other classes of Pr[N(0, 2 sigma²) >= n* - n_i],
    capped at log(1 - 1/classes) (where the data-dependent bound could not help anyway)."""
    _check("sigma", sigma)
    values = np.asarray(counts, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError("counts must be one vote histogram of at least 2 classes")
    top = int(values.argmax())
    terms = [_log_gaussian_tail((values[top] - v) / (math.sqrt(2.0) * sigma))
             for i, v in enumerate(values) if i != top]
    peak = max(terms)
    log_q = peak + math.log(sum(math.exp(t - peak) for t in terms))
    return min(log_q, math.log1p(-1.0 / len(values)))


def threshold_log_p_answered(counts: Sequence[float], threshold: float, sigma_threshold: float) -> float:
    """log Pr[max count + N(0, sigma_threshold²) >= threshold]: the query is answered."""
    _check("sigma_threshold", sigma_threshold)
    return _log_gaussian_tail((threshold - float(np.max(counts))) / sigma_threshold)


def data_dependent_rdp(log_q: float, sigma: float, orders: Sequence[float]) -> np.ndarray:
    """RDP at `orders` of a Gaussian noisy-max over histograms of L2 sensitivity sqrt(2) (noise
    standard deviation `sigma`, data-independent RDP order/sigma²) whose likely outcome fails with
    probability at most e^log_q on this dataset: Theorem 6 of Papernot et al. 2018 with the higher
    orders of Proposition 7 (mu2 = sigma·sqrt(log 1/q), mu1 = mu2 + 1, eps_i = mu_i/sigma²),
    applied where its conditions hold (order < mu1, mu2 > 1, q small enough), else the
    data-independent order/sigma²."""
    _check("sigma", sigma)
    lam = np.asarray(orders, dtype=float)
    if np.any(lam <= 1):
        raise ValueError("orders must be > 1")
    independent = lam / sigma**2
    if log_q > 0:
        raise ValueError(f"log_q must be <= 0, got {log_q}")
    if log_q == -math.inf:
        return np.zeros_like(lam)  # the outcome is certain: nothing is revealed
    mu2 = sigma * math.sqrt(-log_q)
    mu1 = mu2 + 1
    eps1, eps2 = mu1 / sigma**2, mu2 / sigma**2
    if mu2 <= 1 or -log_q <= eps2:
        return independent
    # Theorem 6's condition on q: q <= e^((mu2-1) eps2) / (mu1/(mu1-1) * mu2/(mu2-1))^mu2.
    if log_q > (mu2 - 1) * eps2 - mu2 * (math.log(mu1 / (mu1 - 1)) + math.log(mu2 / (mu2 - 1))):
        return independent
    log_1mq = _log1mexp(log_q)
    # log A = log(1-q) - log(1 - (q e^eps2)^((mu2-1)/mu2)); log B = eps1 - log(q)/(mu1-1).
    log_a = log_1mq - _log1mexp((log_q + eps2) * (mu2 - 1) / mu2)
    log_b = eps1 - log_q / (mu1 - 1)
    dependent = np.logaddexp(log_1mq + (lam - 1) * log_a, log_q + (lam - 1) * log_b) / (lam - 1)
    return np.where(lam < mu1, np.minimum(independent, dependent), independent)


def _gaussian_rdp_curve(noise_multiplier: float, orders: Sequence[float]) -> np.ndarray:
    """dp-accounting's RDP of one Gaussian mechanism of `noise_multiplier`, at `orders`."""
    accountant = rdp.RdpAccountant(orders=list(orders))
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier))
    return np.asarray(accountant.rdp, dtype=float)


def fedpate_confident_gnmax(votes: np.ndarray, answered: Sequence[bool], *, sigma: float, threshold: float | None,
                            sigma_threshold: float | None, delta: float = DEFAULT_DELTA,
                            orders: Sequence[float] = PATE_ORDERS) -> PrivacyReport:
    """(Confident-)GNMax's spend on the vote histograms `votes` (queries x classes): every query
    pays the threshold check (when `threshold` is set), the `answered` ones GNMax of standard
    deviation `sigma`. The report's epsilon is the data-dependent bound (see the module's
    docstring: it depends on the votes and is not itself private); `parameters` carry the
    data-independent bound of the same run, which holds whatever the votes."""
    _check("sigma", sigma)
    _check_delta(delta)
    counts = np.asarray(votes, dtype=float)
    mask = np.asarray(answered, dtype=bool)
    if counts.ndim != 2 or counts.shape[0] != len(mask):
        raise ValueError(f"votes must be queries x classes with one answered flag a query, got {counts.shape} "
                         f"and {len(mask)} flags")
    if (threshold is None) != (sigma_threshold is None):
        raise ValueError("threshold and sigma_threshold go together")
    if threshold is None and not mask.all():
        raise ValueError("without a threshold every query is answered")
    lam = np.asarray(orders, dtype=float)
    gnmax_independent = _gaussian_rdp_curve(sigma / math.sqrt(2.0), lam)  # L2 sensitivity sqrt(2)
    dependent = np.zeros_like(lam)
    independent = np.zeros_like(lam)
    params = {"sigma": _fmt(sigma), "queries": str(len(mask)), "answered": str(int(mask.sum()))}
    if threshold is not None:
        _check("sigma_threshold", sigma_threshold)
        # The threshold check releases max count + noise compared with `threshold`: L2 sensitivity 1.
        step1 = _gaussian_rdp_curve(float(sigma_threshold), lam)
        independent += len(mask) * step1
        for row in counts:
            log_p = threshold_log_p_answered(row, threshold, sigma_threshold)
            # A two-outcome mechanism whose less likely outcome has probability min(p, 1-p); its
            # data-independent RDP order/(2 sigma_threshold²) is GNMax's at sigma sqrt(2)·sigma_threshold.
            log_q = min(log_p, _log1mexp(log_p))
            dependent += np.minimum(step1, data_dependent_rdp(log_q, math.sqrt(2.0) * sigma_threshold, lam))
        params.update({"threshold": _fmt(threshold), "sigma_threshold": _fmt(sigma_threshold)})
    independent += int(mask.sum()) * gnmax_independent
    for row in counts[mask]:
        dependent += np.minimum(gnmax_independent, data_dependent_rdp(gnmax_log_q(row, sigma), sigma, lam))
    if len(mask):
        epsilon = float(rdp_privacy_accountant.compute_epsilon(lam, dependent, delta)[0])
        bound = float(rdp_privacy_accountant.compute_epsilon(lam, independent, delta)[0])
    else:
        epsilon = bound = 0.0
    params["data_independent_epsilon"] = _fmt(bound)
    name = "confident GNMax (PATE)" if threshold is not None else "gaussian noisy argmax (GNMax)"
    return PrivacyReport(
        formal_guarantee=True, epsilon=epsilon, delta=delta, mechanism=name,
        accountant="RDP, data-dependent (PATE 2018)", compositions=len(mask), parameters=params,
        explanation=(f"one teacher's data changes one vote (client-level with a teacher per client, record-level "
                     f"with several teachers per node), data-dependent: {len(mask)} queries"
                     + (f" through a noisy threshold {_fmt(threshold)} (sigma {_fmt(sigma_threshold)})"
                        if threshold is not None else "")
                     + f", {int(mask.sum())} answered by GNMax (sigma {_fmt(sigma)}); each step's RDP bounded from "
                     f"its vote histogram (Theorem 6), composed and converted by dp-accounting. The figure depends "
                     f"on the private votes and is not itself sanitised; the data-independent bound of the same "
                     f"queries is {_fmt(bound)}"))


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
