"""The adaptive learning rate psi, its scaled inverse chi-square law, and exact, approximate and sampled Var[psi]."""

import mpmath
import numpy as np
import pytest
from scipy import stats

from radam import theory

mpmath.mp.dps = 50


def mp_moments(rho):
    """E[psi] and Var[psi] for psi^2 ~ Scale-inv-chi^2(rho, 1), in 50-digit arithmetic."""
    r = mpmath.mpf(rho)
    mean = mpmath.sqrt(r / 2) * mpmath.gamma((r - 1) / 2) / mpmath.gamma(r / 2)
    return mean, (r / (r - 2) - mean**2 if rho > 2 else mpmath.inf)


RHOS = [2.0 + 1e-6, 2.001, 2.5, 3.0, 4.0, 4.5, 5.0, 7.3, 10.0, 19.99, 20.0, 20.01, 33.3, 100.0, 499.5]
RHOS += [2e3, 1e4, 1e5, 1e6]


@pytest.mark.parametrize("rho", RHOS)
def test_exact_variance_against_50_digit_arithmetic(rho):
    expected = float(mp_moments(rho)[1])
    assert theory.variance_psi_exact(rho) == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("rho", [1.0 + 1e-6, 1.5, 2.0] + RHOS)
def test_exact_mean_against_50_digit_arithmetic(rho):
    expected = float(mp_moments(rho)[0])
    assert theory.mean_psi_exact(rho) == pytest.approx(expected, rel=1e-13, abs=0)


def test_paper_beta_form_of_eq_2_equals_the_log_gamma_form():
    # The paper's Eq. 2: Var = rho/(rho-2) - rho 2^(2 rho - 5)/pi * B((rho-1)/2, (rho-1)/2)^2, evaluated in mpmath.
    for rho in [5, 6.5, 10, 50, 200, 2000]:
        r = mpmath.mpf(rho)
        beta = mpmath.beta((r - 1) / 2, (r - 1) / 2)
        paper = r / (r - 2) - r * mpmath.power(2, 2 * r - 5) / mpmath.pi * beta**2
        assert theory.variance_psi_exact(rho) == pytest.approx(float(paper), rel=1e-12)


def test_exact_variance_has_no_overflow_and_its_ratio_to_the_approximation_tends_to_one():
    rho = np.logspace(np.log10(4.001), 12, 400)
    exact = theory.variance_psi_exact(rho)
    approx = theory.variance_psi_approx(rho)
    assert np.all(np.isfinite(exact)) and np.all(exact > 0)
    ratio = exact / approx
    assert np.all(ratio < 1.0)  # Eq. 5 overestimates the variance everywhere
    big = rho > 100
    assert np.all(np.diff(ratio[big]) > 0)  # and the gap closes monotonically ...
    assert 1 - ratio[np.argmin(np.abs(rho - 1e6))] < 1e-5  # ... like 1/rho
    assert 1 - ratio[-1] < 1e-10
    # The asymptotic form Var = (1 + 15/(4 rho) + O(1/rho^2)) / (2 rho), at rho = 1e6 (series worked out in mpmath).
    assert theory.variance_psi_exact(1e6) * 2e6 == pytest.approx(1 + 3.75e-6, rel=1e-10)


def test_theorem_1_variance_decreases_in_rho_on_a_dense_grid():
    rho = np.concatenate([np.linspace(2.0005, 10.0, 20_001), np.logspace(1.0, 6.0, 100_001)[1:]])
    var = theory.variance_psi_exact(rho)
    assert np.all(np.diff(var) < 0)
    approx = theory.variance_psi_approx(rho[rho > 4.0005])
    assert np.all(np.diff(approx) < 0)


def test_the_papers_rho_5_versus_rho_500_claim_exact_and_approximate():
    exact = theory.variance_psi_exact(5.0) / theory.variance_psi_exact(500.0)
    approx = theory.variance_psi_approx(5.0) / theory.variance_psi_approx(500.0)
    # "over 100 times": true for both, but the exact ratio is 3.3 times smaller than Eq. 5's.
    assert exact == pytest.approx(250.07, rel=1e-4)
    assert approx == pytest.approx(823.36, rel=1e-5)  # 5/(2*3*1) / (500/(2*498*496)), by hand
    assert 100 < exact < approx


def test_delta_method_is_var_of_square_over_four_mean_of_square():
    rho = np.array([4.5, 5.0, 10.0, 100.0, 1e4])
    via_moments = theory.variance_psi_squared(rho) / (4 * theory.mean_psi_squared(rho))
    np.testing.assert_allclose(theory.variance_psi_approx(rho), via_moments, rtol=1e-14)


@pytest.mark.parametrize("rho", [3.0, 5.0, 12.5, 200.0])
def test_scaled_inv_chi2_is_parameterised_as_the_paper_says(rho):
    dist = theory.scaled_inv_chi2(rho, sigma=2.0)
    assert dist.mean() == pytest.approx(theory.mean_psi_squared(rho, sigma=2.0), rel=1e-12)
    if rho > 4:
        assert dist.var() == pytest.approx(theory.variance_psi_squared(rho, sigma=2.0), rel=1e-12)
    # E[sqrt(x)] by numerical integration against the density: the paper's Eq. 7.
    assert dist.expect(np.sqrt) == pytest.approx(theory.mean_psi_exact(rho, sigma=2.0), rel=1e-8)
    # rho tau^2 / psi^2 is chi-square with rho degrees of freedom (tau^2 = 1/sigma^2).
    x = 0.7 * rho
    assert stats.chi2(rho).sf(x) == pytest.approx(dist.cdf(rho / (4.0 * x)), rel=1e-10)


def test_sample_psi_is_reproducible_and_has_the_right_law():
    a = theory.sample_psi(7.0, 50_000, np.random.default_rng(3))
    b = theory.sample_psi(7.0, 50_000, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    # Kolmogorov-Smirnov against the law of psi = sqrt(psi^2): P(psi <= y) = P(psi^2 <= y^2).
    ks = stats.kstest(a, lambda y: theory.scaled_inv_chi2(7.0).cdf(y**2))
    assert ks.pvalue > 1e-3


@pytest.mark.parametrize("rho, n", [(5.0, 400_000), (10.0, 200_000), (50.0, 200_000), (500.0, 200_000)])
def test_monte_carlo_agrees_with_exact_within_4_standard_errors(rho, n):
    # For rho > 4 the variance estimator has a finite standard error. Over 40 seeds (200,000 draws) the largest
    # |z| seen was 3.2 at rho = 5 and 2.5 at rho >= 10, so 4 standard errors is a test that passes for a correct
    # estimator and fails for a variance that is off by a few standard errors (1% at rho = 500).
    est = theory.variance_psi_monte_carlo(rho, n, np.random.default_rng(2020))
    exact = theory.variance_psi_exact(rho)
    assert est.n_samples == n
    assert abs(est.value - exact) < 4 * est.standard_error
    assert est.standard_error < 0.05 * exact  # the test has teeth: 4 SE is a tight band
    assert est.mean == pytest.approx(theory.mean_psi_exact(rho), rel=1e-2)


def test_monte_carlo_chunking_does_not_change_the_estimate_beyond_rounding():
    one = theory.variance_psi_monte_carlo(20.0, 30_000, np.random.default_rng(1), chunk=30_000)
    many = theory.variance_psi_monte_carlo(20.0, 30_000, np.random.default_rng(1), chunk=7_000)
    assert one.value == pytest.approx(many.value, rel=1e-9)
    assert one.standard_error == pytest.approx(many.standard_error, rel=1e-6)


def test_monte_carlo_at_rho_3_is_consistent_though_its_standard_error_is_not():
    # At rho = 3, Var[psi] is finite but E[psi^4] is not: the standard error is infinite and the reported one is
    # meaningless (over 40 seeds, 5% of z-scores exceeded 4). What still holds is consistency: the median over
    # independent seeds of the relative error is small (measured: -1% at 1e6 draws, -5% at 1e5).
    exact = theory.variance_psi_exact(3.0)
    estimates = [theory.variance_psi_monte_carlo(3.0, 100_000, np.random.default_rng(s)) for s in range(9)]
    errors = [e.value / exact - 1 for e in estimates]
    assert abs(np.median(errors)) < 0.1


def test_psi_of_a_gradient_sequence():
    beta2 = 0.99
    grads = np.random.default_rng(0).normal(size=(4, 30))
    v = np.zeros(4)
    for t in range(1, 31):  # Adam's recursion, written out
        v = beta2 * v + (1 - beta2) * grads[:, t - 1] ** 2
    np.testing.assert_allclose(theory.psi(grads, beta2), np.sqrt((1 - beta2**30) / v), rtol=1e-13)
    np.testing.assert_allclose(theory.psi_squared(grads.T, beta2, axis=0), (1 - beta2**30) / v, rtol=1e-13)
    # Bias correction is exact: a constant gradient c gives psi = 1/|c| at every step.
    assert theory.psi(np.full(7, -0.5), 0.999) == pytest.approx(2.0, rel=1e-13)


def test_bad_degrees_of_freedom_are_refused():
    with pytest.raises(ValueError, match="above 2"):
        theory.variance_psi_exact(2.0)
    with pytest.raises(ValueError, match="above 1"):
        theory.mean_psi_exact(1.0)
    with pytest.raises(ValueError, match="above 4"):
        theory.variance_psi_squared(4.0)


@pytest.mark.parametrize(
    "function",
    [
        theory.variance_psi_exact,
        theory.variance_psi_approx,
        theory.mean_psi_exact,
        theory.mean_psi_squared,
        theory.variance_psi_squared,
    ],
)
def test_infinite_degrees_of_freedom_and_bad_sigma_are_refused(function):
    with pytest.raises(ValueError, match="finite"):
        function(np.inf)
    for sigma in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="sigma"):
            function(9.0, sigma=sigma)


def test_weighted_chi2_moments_hold_for_weights_of_wildly_different_scales():
    # S = a Z1^2 + Z2^2 + Z3^2 with a = 1e300: E[1/S] = int (1 + 2au)^(-1/2) (1 + 2u)^(-1) du -> pi / (2 sqrt(a))
    mean, var = theory.weighted_chi2_psi_moments([1e300, 1.0, 1.0])
    assert var == pytest.approx(np.pi / 2 * 1e-150, rel=1e-9)
    assert 0.0 < mean**2 < 1e-290


def test_ema_psi_moments_match_high_precision_quadrature():
    # reference: mpmath quad at 30 digits of 2/sqrt(pi) int L(v^2) dv for the EMA weights, t = 2000, beta2 = 0.999
    assert theory.ema_psi_moments(2000, 0.999)[0] == pytest.approx(1.00049262729067852493685588778, rel=1e-13)
