"""Privacy figures of federated jobs (servers/federation/domain/privacy.py) against values
computed here independently of dp-accounting: closed forms and textbook formulas, written out
in plain Python."""

from __future__ import annotations

import math

import pytest

from servers.federation.domain import privacy

INTEGER_ORDERS = list(range(2, 65))


def rdp_to_dp(rdp_by_order: dict[float, float], delta: float) -> float:
    """(epsilon, delta) from RDP curve points by the conversion of Canonne, Kamath and Steinke
    (2020, Prop. 12): eps = rdp + log((a-1)/a) - (log(delta) + log(a)) / (a-1), minimised over a."""
    return min(r + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1) for a, r in rdp_by_order.items())


def gaussian_rdp(z: float, order: float, compositions: int) -> float:
    """RDP of `compositions` Gaussian mechanisms of noise multiplier z (Mironov 2017): k a / (2 z^2)."""
    return compositions * order / (2 * z * z)


def subsampled_gaussian_rdp(q: float, z: float, order: int, compositions: int) -> float:
    """RDP of the Poisson-subsampled Gaussian at an integer order (Mironov, Talwar, Zhang 2019):
    log(sum_k C(a,k) (1-q)^(a-k) q^k exp((k^2-k)/(2 z^2))) / (a-1), times the compositions."""
    logs = [math.log(math.comb(order, k)) + (order - k) * math.log1p(-q) + k * math.log(q)
            + (k * k - k) / (2 * z * z) for k in range(order + 1)]
    top = max(logs)  # log-sum-exp: the terms overflow a float at high orders
    log_total = top + math.log(sum(math.exp(v - top) for v in logs))
    return compositions * log_total / (order - 1)


def exact_gaussian_epsilon(mu: float, delta: float) -> float:
    """The exact epsilon of a Gaussian mechanism with sensitivity/sigma = mu (Balle and Wang 2018):
    the root of delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2), by bisection."""
    phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    d = lambda e: phi(-e / mu + mu / 2) - math.exp(e) * phi(-e / mu - mu / 2)  # noqa: E731
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if d(mid) > delta else (lo, mid)
    return hi


def test_laplace_pure_composition_is_queries_times_twice_epsilon() -> None:
    # Prepare: the seed's Laplace noise of scale 1/epsilon, L1 sensitivity 2 per query.
    for epsilon, queries in [(0.1, 10), (0.5, 100), (2.0, 1)]:
        # Execute
        report = privacy.fedpate_laplace(epsilon, queries)
        # Assert
        assert report.formal_guarantee
        assert report.epsilon == pytest.approx(queries * 2 * epsilon, rel=1e-12)
        assert report.delta == 0.0
        assert report.compositions == queries
        assert report.parameters["laplace_scale"] == f"{1 / epsilon:.6g}"


def test_laplace_tighter_pld_figure_is_below_pure_and_above_one_query() -> None:
    report = privacy.fedpate_laplace(0.1, 100, delta=1e-5)
    pld_eps = float(report.parameters["pld_epsilon_at_delta_1e-05"])
    # Advanced composition (Dwork, Rothblum, Vadhan) is an independent upper bound on the tight figure.
    e0, k, d = 0.2, 100, 1e-5
    advanced = math.sqrt(2 * k * math.log(1 / d)) * e0 + k * e0 * (math.exp(e0) - 1)
    assert e0 < pld_eps < min(report.epsilon, advanced)


def test_no_queries_spend_nothing() -> None:
    assert privacy.fedpate_laplace(1.0, 0).epsilon == 0.0
    assert privacy.fedpate_gaussian(5.0, 0).epsilon == 0.0


def test_gnmax_matches_the_closed_form_rdp_curve() -> None:
    sigma, queries, delta = 40.0, 200, 1e-5
    z = sigma / math.sqrt(2)
    expected = rdp_to_dp({a: gaussian_rdp(z, a, queries) for a in INTEGER_ORDERS}, delta)
    report = privacy.fedpate_gaussian(sigma, queries, delta=delta, orders=INTEGER_ORDERS)
    assert report.epsilon == pytest.approx(expected, rel=1e-9)
    assert report.delta == delta and report.accountant == "RDP"


def test_gnmax_default_orders_bound_the_exact_gaussian_epsilon() -> None:
    # k Gaussians of multiplier z compose exactly to one of multiplier z / sqrt(k).
    sigma, queries, delta = 20.0, 100, 1e-5
    z = sigma / math.sqrt(2)
    exact = exact_gaussian_epsilon(math.sqrt(queries) / z, delta)
    reported = privacy.fedpate_gaussian(sigma, queries, delta=delta).epsilon
    assert exact <= reported <= 1.25 * exact


def test_subsampled_gaussian_matches_the_integer_order_formula() -> None:
    q, z, rounds, delta = 0.1, 1.1, 50, 1e-5
    expected = rdp_to_dp({a: subsampled_gaussian_rdp(q, z, a, rounds) for a in INTEGER_ORDERS}, delta)
    report = privacy.dp_fedavg(z, q, rounds, delta=delta, orders=INTEGER_ORDERS)
    assert report.epsilon == pytest.approx(expected, rel=1e-6)
    # The library's default orders include fractional ones: never worse than the integers alone.
    assert privacy.dp_fedavg(z, q, rounds, delta=delta).epsilon <= expected * (1 + 1e-9)


def test_full_participation_is_the_plain_gaussian() -> None:
    z, rounds, delta = 2.0, 10, 1e-5
    expected = rdp_to_dp({a: gaussian_rdp(z, a, rounds) for a in INTEGER_ORDERS}, delta)
    report = privacy.dp_fedavg(z, 1.0, rounds, delta=delta, orders=INTEGER_ORDERS)
    assert report.epsilon == pytest.approx(expected, rel=1e-9)
    assert report.mechanism == "gaussian"


def test_no_noise_is_reported_as_no_guarantee() -> None:
    report = privacy.dp_fedavg(0.0, 1.0, 3)
    assert not report.formal_guarantee
    assert math.isinf(report.epsilon)
    assert "no formal" in report.explanation and "dp_parameter" in report.explanation


@pytest.mark.parametrize("call", [
    lambda: privacy.fedpate_laplace(0.0, 10),
    lambda: privacy.fedpate_laplace(-1.0, 10),
    lambda: privacy.fedpate_gaussian(0.0, 10),
    lambda: privacy.fedpate_laplace(1.0, 10, delta=0.0),
    lambda: privacy.dp_fedavg(1.0, 0.0, 1),
    lambda: privacy.dp_fedavg(-1.0, 0.5, 1),
    lambda: privacy.fedpate("uniform", epsilon=1.0, sigma=1.0, queries=1),
])
def test_bad_parameters_are_refused(call) -> None:
    with pytest.raises(ValueError):
        call()
