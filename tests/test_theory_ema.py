"""The EMA treated as an SMA: weights, centres of mass, rho_t by root finding, Kish's effective sample size."""

import numpy as np
import pytest

from radam import theory

BETA2S = [0.9, 0.99, 0.999, 0.9999]
STEPS = [1, 2, 3, 5, 10, 100, 1000, 10_000]


@pytest.mark.parametrize("beta2", BETA2S)
def test_ema_weights(beta2):
    w = theory.ema_weights(50, beta2)
    assert w.shape == (50,)
    assert w.sum() == pytest.approx(1.0, rel=1e-13)
    assert np.all(np.diff(w) > 0)  # newest (last) gradient weighs most
    np.testing.assert_allclose(w[:-1] / w[1:], beta2, rtol=1e-13)
    assert theory.ema_weights(1, beta2) == pytest.approx([1.0])


@pytest.mark.parametrize("beta2", BETA2S)
@pytest.mark.parametrize("t", STEPS)
def test_centre_of_mass_closed_form_against_the_direct_sum(beta2, t):
    w = theory.ema_weights(t, beta2)
    direct = np.sum(w * np.arange(1, t + 1))
    assert theory.ema_centre_of_mass(t, beta2) == pytest.approx(direct, rel=1e-12)


def test_sma_centre_of_mass_against_the_direct_sum():
    t = 40
    for f in range(1, t + 1):
        direct = np.mean([t + 1 - i for i in range(1, f + 1)])
        assert theory.sma_centre_of_mass(f, t) == pytest.approx(direct, rel=1e-14)


@pytest.mark.parametrize("beta2", BETA2S)
@pytest.mark.parametrize("t", STEPS)
def test_numeric_solve_of_the_matching_equation_gives_rho_t(beta2, t):
    numeric = theory.sma_length_numeric(t, beta2)
    closed = theory.sma_length(t, beta2)
    assert closed == theory.rho_t(t, beta2)
    assert numeric == pytest.approx(closed, rel=1e-9, abs=1e-9)
    # and the solution does equate the two centres of mass
    assert theory.sma_centre_of_mass(numeric, t) == pytest.approx(theory.ema_centre_of_mass(t, beta2), rel=1e-12)


@pytest.mark.parametrize("beta2", BETA2S)
def test_kish_effective_sample_size(beta2):
    t = np.array(STEPS)
    closed = theory.kish_effective_sample_size(t, beta2)
    numeric = np.array([theory.kish_effective_sample_size_of_weights(theory.ema_weights(s, beta2)) for s in STEPS])
    np.testing.assert_allclose(closed, numeric, rtol=1e-11)
    assert closed[0] == pytest.approx(1.0, rel=1e-14)
    assert np.all(closed >= theory.rho_t(t, beta2) - 1e-12)  # Kish never counts fewer samples than rho_t
    assert theory.kish_effective_sample_size(1e7, beta2) == pytest.approx(theory.rho_inf(beta2), rel=1e-12)


def test_kish_is_the_satterthwaite_degrees_of_freedom():
    # S = sum w_i Z_i^2 has mean sum w = 1 and variance 2 sum w^2. A scaled chi-square c * chi2_nu with the same two
    # moments has c nu = 1 and 2 c^2 nu = 2 sum w^2, so nu = 1 / sum w^2 = Kish's n_eff (the weights sum to 1).
    w = theory.ema_weights(700, 0.995)
    nu = 1.0 / np.sum(w**2)
    assert nu == pytest.approx(theory.kish_effective_sample_size(700, 0.995), rel=1e-12)


@pytest.mark.parametrize("n", [3, 4, 10, 1000])
def test_weighted_chi2_moments_reproduce_the_scaled_inverse_chi2_for_equal_weights(n):
    mean, var = theory.weighted_chi2_psi_moments(np.full(n, 1.0 / n))
    assert mean == pytest.approx(theory.mean_psi_exact(n), rel=1e-10)
    assert var == pytest.approx(theory.variance_psi_exact(n), rel=1e-8)


def test_weighted_chi2_moments_need_three_weights():
    with pytest.raises(ValueError, match="three"):
        theory.weighted_chi2_psi_moments([0.5, 0.5])


@pytest.mark.parametrize("t, beta2, n", [(8, 0.9, 400_000), (60, 0.99, 100_000)])
def test_ema_moments_against_simulated_adam(t, beta2, n):
    grads = np.random.default_rng(11).standard_normal((n, t))
    psi = theory.psi(grads, beta2)
    mean, var = theory.ema_psi_moments(t, beta2)
    d = psi - psi.mean()
    s2 = psi.var(ddof=1)
    se = np.sqrt((np.mean(d**4) - (n - 3) / (n - 1) * s2**2) / n)
    assert abs(s2 - var) < 4 * se
    assert abs(psi.mean() - mean) < 4 * psi.std() / np.sqrt(n)


def test_where_the_ema_as_sma_approximation_holds_and_where_it_does_not():
    # beta2 = 0.999: with rho_t degrees of freedom the scaled inverse chi-square gets Var[psi_t] within 0.5% for
    # t <= 20 (the weights are nearly equal), but overestimates it by more than 10% around t = 1000-2000; with Kish's
    # n_eff the error stays below 0.1% everywhere.
    def rel_errors(t, beta2):
        truth = theory.ema_psi_moments(t, beta2)[1]
        via_rho = theory.variance_psi_exact(theory.rho_t(t, beta2)) / truth - 1
        via_kish = theory.variance_psi_exact(theory.kish_effective_sample_size(t, beta2)) / truth - 1
        return via_rho, via_kish

    for t in [3, 5, 10, 20]:
        via_rho, via_kish = rel_errors(t, 0.999)
        assert 0 < via_rho < 0.005 and abs(via_kish) < 1e-4
    for t in [1000, 1500, 2000]:
        via_rho, via_kish = rel_errors(t, 0.999)
        assert via_rho > 0.10 and abs(via_kish) < 1e-3
    # beta2 = 0.9 (rho_inf = 19): both are off by over 10% once the weights are unequal: the shape, not the dof.
    for t in [50, 100]:
        via_rho, via_kish = rel_errors(t, 0.9)
        assert via_rho > 0.1 and via_kish > 0.1


def test_centre_of_mass_against_40_digit_arithmetic():
    import mpmath

    mpmath.mp.dps = 40
    for beta2 in [0.5, 0.9, 0.999, 0.99999]:
        for t in [1, 2, 3, 7, 50, 1000, 10**5, 10**7]:
            b, s = mpmath.mpf(beta2), mpmath.mpf(t)
            expected = float(s - b / (1 - b) + s * b**s / (1 - b**s))
            assert theory.ema_centre_of_mass(t, beta2) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1.0, 1e4])
def test_weighted_chi2_moments_scale_with_the_weights(scale):
    """S = c S' gives psi = psi' / sqrt(c): E[psi] / sqrt(c) and Var[psi] / c, for weights of any size."""
    weights = np.array([0.5, 0.3, 0.15, 0.05])
    mean, var = theory.weighted_chi2_psi_moments(weights)
    scaled_mean, scaled_var = theory.weighted_chi2_psi_moments(scale * weights)
    assert scaled_mean == pytest.approx(mean / np.sqrt(scale), rel=1e-9)
    assert scaled_var == pytest.approx(var / scale, rel=1e-9)
