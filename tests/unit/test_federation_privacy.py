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


# --- PATE's data-dependent analysis (Papernot et al. 2018), checked against mpmath and exact
# --- Renyi divergences of small GNMax instances.

import mpmath  # noqa: E402 - pinned in requirements/mesh.lock (a dependency of the mesh's stack)

mpmath.mp.dps = 50


def theorem6(q: float, sigma: float, order: float) -> float:
    """Theorem 6 with Proposition 7's orders, written out directly in 50-digit arithmetic (no
    logarithms), or the data-independent order/sigma² where its conditions fail."""
    q, s, lam = mpmath.mpf(q), mpmath.mpf(sigma), mpmath.mpf(order)
    independent = lam / s**2
    mu2 = s * mpmath.sqrt(mpmath.log(1 / q))
    mu1 = mu2 + 1
    e1, e2 = mu1 / s**2, mu2 / s**2
    if not (mu2 > 1 and lam < mu1 and q * mpmath.e**e2 < 1
            and q <= mpmath.e**((mu2 - 1) * e2) / ((mu1 / (mu1 - 1)) * (mu2 / (mu2 - 1)))**mu2):
        return float(independent)
    a = (1 - q) / (1 - (q * mpmath.e**e2) ** ((mu2 - 1) / mu2))
    b = mpmath.e**e1 / q ** (1 / (mu1 - 1))
    return float(min(independent, mpmath.log((1 - q) * a ** (lam - 1) + q * b ** (lam - 1)) / (lam - 1)))


def union_q(counts: list[int], sigma: float) -> float:
    """Proposition 7's q: sum over the other classes of P[N(0, 2 sigma²) >= n* - n_i], in mpmath."""
    top = max(counts)
    rest = list(counts)
    rest.remove(top)
    return float(min(sum(mpmath.erfc((top - n) / (2 * mpmath.mpf(sigma))) / 2 for n in rest),
                     1 - mpmath.mpf(1) / len(counts)))


def test_gnmax_q_is_the_union_bound_far_into_the_tail() -> None:
    for counts, sigma in [([30, 12, 8, 0], 10.0), ([45, 3, 2, 0, 0, 0, 0, 0, 0, 0], 5.0),
                          ([250, 0, 0], 4.0), ([5, 5, 0], 3.0)]:
        assert math.exp(privacy.gnmax_log_q(counts, sigma)) == pytest.approx(union_q(counts, sigma), rel=1e-6)
    # Past erfc's float range (q ~ 1e-1700): the log is still right.
    log_q = privacy.gnmax_log_q([250, 0, 0], 2.0)
    assert log_q == pytest.approx(float(mpmath.log(union_q_mp([250, 0, 0], 2.0))), rel=1e-6)


def union_q_mp(counts: list[int], sigma: float):  # noqa: ANN201 - an mpmath number
    top = max(counts)
    rest = list(counts)
    rest.remove(top)
    return sum(mpmath.erfc((top - n) / (2 * mpmath.mpf(sigma))) / 2 for n in rest)


def test_data_dependent_rdp_matches_theorem_6_in_high_precision() -> None:
    orders = [1.5, 2, 3, 5, 8, 12, 20, 32, 50]
    for q, sigma in [(1e-3, 20.0), (1e-8, 10.0), (1e-20, 5.0), (0.05, 40.0), (0.3, 5.0)]:
        got = privacy.data_dependent_rdp(math.log(q), sigma, orders)
        expected = [theorem6(q, sigma, a) for a in orders]
        assert list(got) == pytest.approx(expected, rel=1e-6, abs=1e-12)
        assert all(g <= a / sigma**2 * (1 + 1e-12) for g, a in zip(got, orders))


def test_data_dependent_rdp_bounds_the_exact_renyi_divergence_of_two_class_gnmax() -> None:
    # Two classes: GNMax answers class 0 with probability Phi((n0 - n1) / (sqrt(2) sigma)), exactly
    # (the union bound is exact). One teacher changing its vote moves the margin by 2 either way:
    # the data-dependent bound must hold for both neighbours, in both directions of the divergence
    # it promises (M(D) against M(D')).
    phi = lambda x: 0.5 * mpmath.erfc(-x / mpmath.sqrt(2))  # noqa: E731
    for margin, sigma in [(30, 8.0), (60, 10.0), (20, 4.0), (100, 15.0)]:
        n0, n1 = (100 + margin) // 2, (100 - margin) // 2
        log_q = privacy.gnmax_log_q([n0, n1], sigma)
        p = phi(mpmath.mpf(margin) / (mpmath.sqrt(2) * sigma))
        for order in (2, 4, 8, 16, 32):
            bound = privacy.data_dependent_rdp(log_q, sigma, [order])[0]
            for other_margin in (margin - 2, margin + 2):
                p2 = phi(mpmath.mpf(other_margin) / (mpmath.sqrt(2) * sigma))
                exact = mpmath.log(p**order * p2 ** (1 - order) + (1 - p)**order * (1 - p2) ** (1 - order)) / (order - 1)
                assert float(exact) <= bound * (1 + 1e-9) + 1e-15
        # Agreement by these margins makes the bound smaller than the data-independent one.
        assert privacy.data_dependent_rdp(log_q, sigma, [8])[0] < 0.9 * 8 / sigma**2


def test_confident_gnmax_total_is_the_sum_of_per_query_bounds_converted() -> None:
    # Independent: per-query Theorem 6 in mpmath, the threshold's two-outcome bound at sqrt(2)
    # sigma_threshold, summed order by order, converted by the Canonne-Kamath-Steinke formula.
    votes = [[40, 5, 3, 2], [20, 18, 7, 5], [48, 1, 1, 0], [10, 10, 15, 15], [49, 1, 0, 0]]
    answered = [True, True, True, False, True]
    sigma, threshold, sigma_t, delta = 6.0, 30.0, 12.0, 1e-5
    orders = [float(a) for a in INTEGER_ORDERS]
    total = dict.fromkeys(orders, 0.0)
    for counts, used in zip(votes, answered):
        p_answer = float(phi_mp((max(counts) - threshold) / sigma_t))
        q_threshold = min(p_answer, 1 - p_answer)
        for a in orders:
            total[a] += min(a / (2 * sigma_t**2), theorem6(q_threshold, math.sqrt(2) * sigma_t, a))
            if used:
                total[a] += theorem6(union_q(counts, sigma), sigma, a)
    expected = rdp_to_dp(total, delta)
    report = privacy.fedpate_confident_gnmax(votes, answered, sigma=sigma, threshold=threshold,
                                             sigma_threshold=sigma_t, delta=delta, orders=orders)
    assert report.epsilon == pytest.approx(expected, rel=1e-5)
    # The data-independent figure of the same run: 5 threshold checks and 4 GNMax answers.
    independent = rdp_to_dp({a: 5 * a / (2 * sigma_t**2) + 4 * a / sigma**2 for a in orders}, delta)
    assert float(report.parameters["data_independent_epsilon"]) == pytest.approx(independent, rel=1e-5)
    assert report.epsilon < independent
    assert report.parameters["answered"] == "4" and report.parameters["queries"] == "5"
    assert "not itself sanitised" in report.explanation


def phi_mp(x: float):  # noqa: ANN201 - an mpmath number
    return 0.5 * mpmath.erfc(-mpmath.mpf(x) / mpmath.sqrt(2))


def test_gnmax_without_agreement_costs_the_data_independent_figure() -> None:
    # Ties everywhere: q is at its cap and Theorem 6 cannot help; the figure is fedpate_gaussian's.
    votes = [[10, 10, 10, 10, 10]] * 30
    report = privacy.fedpate_confident_gnmax(votes, [True] * 30, sigma=20.0, threshold=None, sigma_threshold=None,
                                             orders=INTEGER_ORDERS)
    plain = privacy.fedpate_gaussian(20.0, 30, orders=INTEGER_ORDERS).epsilon
    assert report.epsilon == pytest.approx(plain, rel=1e-9)
    assert float(report.parameters["data_independent_epsilon"]) == pytest.approx(plain, rel=1e-5)


def test_unanimous_teachers_cost_almost_nothing() -> None:
    votes = [[200, 0, 0, 0, 0, 0, 0, 0, 0, 0]] * 100
    report = privacy.fedpate_confident_gnmax(votes, [True] * 100, sigma=20.0, threshold=None, sigma_threshold=None)
    assert report.epsilon < 0.1 * float(report.parameters["data_independent_epsilon"])


@pytest.mark.parametrize("call", [
    lambda: privacy.fedpate_confident_gnmax([[3, 1]], [False], sigma=2.0, threshold=None, sigma_threshold=None),
    lambda: privacy.fedpate_confident_gnmax([[3, 1]], [True], sigma=2.0, threshold=2.0, sigma_threshold=None),
    lambda: privacy.fedpate_confident_gnmax([[3, 1]], [True, True], sigma=2.0, threshold=None, sigma_threshold=None),
    lambda: privacy.fedpate_confident_gnmax([[3, 1]], [True], sigma=0.0, threshold=None, sigma_threshold=None),
    lambda: privacy.data_dependent_rdp(0.5, 2.0, [2.0]),
    lambda: privacy.data_dependent_rdp(-1.0, 2.0, [1.0]),
    lambda: privacy.gnmax_log_q([3], 1.0),
])
def test_bad_data_dependent_inputs_are_refused(call) -> None:
    with pytest.raises(ValueError):
        call()
