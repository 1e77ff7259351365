"""rho_inf, rho_t, r_t and the first adaptive step, against values worked out by hand from the paper's formulas."""

import numpy as np
import pytest

from radam import theory

BETA2S = [0.9, 0.99, 0.999, 0.9999]


@pytest.mark.parametrize("beta2", BETA2S + [0.5, 0.7, 0.99999])
def test_rho_1_is_one_for_every_beta2(beta2):
    # rho_1 = 2/(1-b) - 1 - 2b/(1-b) = (2 - 2b)/(1-b) - 1 = 1: one squared gradient is an SMA of length one.
    assert theory.rho_t(1, beta2) == pytest.approx(1.0, rel=1e-12)


def test_rho_2_by_hand():
    # rho_2 = 2/(1-b) - 1 - 4b^2/(1-b^2) = (2(1+b) - 4b^2)/(1-b^2) - 1; for b = 0.9: (3.8 - 3.24)/0.19 - 1.
    assert theory.rho_t(2, 0.9) == pytest.approx((3.8 - 3.24) / 0.19 - 1.0, rel=1e-12)


def test_rho_inf_by_hand():
    np.testing.assert_allclose(theory.rho_inf([0.9, 0.99, 0.999]), [19.0, 199.0, 1999.0], rtol=1e-12)


def test_rho_t_increases_to_rho_inf():
    t = np.arange(1, 200_001)
    rho = theory.rho_t(t, 0.999)
    assert np.all(np.diff(rho[:20_000]) > 0)  # strictly, until the increments fall below float64 resolution
    assert np.all(np.diff(rho) >= 0)
    assert rho[-1] == pytest.approx(theory.rho_inf(0.999), rel=1e-12)
    assert np.all(rho <= theory.rho_inf(0.999))


def test_rho_t_is_vectorised_and_broadcasts():
    out = theory.rho_t(np.arange(1, 4)[:, None], np.array(BETA2S)[None, :])
    assert out.shape == (3, 4)
    assert out.dtype == np.float64


# The first step with rho_t > 4 and rho_t > 5, worked out from rho_t (rho_4 < 4 < rho_5 < 5 < rho_6 for these beta2).
@pytest.mark.parametrize("beta2", BETA2S)
def test_first_adaptive_step(beta2):
    assert theory.first_adaptive_step(beta2, threshold=4.0) == 5
    assert theory.first_adaptive_step(beta2, threshold=5.0) == 6
    assert theory.rho_t(4, beta2) <= 4.0 < theory.rho_t(5, beta2) <= 5.0 < theory.rho_t(6, beta2)


def test_first_adaptive_step_for_large_thresholds_and_arrays():
    steps = theory.first_adaptive_step(np.array([0.999, 0.9999]), threshold=1000.0)
    assert steps.shape == (2,)
    for beta2, t in zip([0.999, 0.9999], steps):
        assert theory.rho_t(t - 1, beta2) <= 1000.0 < theory.rho_t(t, beta2)


def test_first_adaptive_step_refuses_unreachable_threshold():
    with pytest.raises(ValueError, match="rho_inf"):
        theory.first_adaptive_step(0.6, threshold=4.0)  # rho_inf = 4 exactly: never above 4


def test_r_t_by_hand_at_step_6():
    beta2 = 0.999
    rho6 = 2 / (1 - beta2) - 1 - 2 * 6 * beta2**6 / (1 - beta2**6)
    rinf = 2 / (1 - beta2) - 1
    expected = np.sqrt((rho6 - 4) * (rho6 - 2) * rinf / ((rinf - 4) * (rinf - 2) * rho6))
    assert theory.r_t(6, beta2) == pytest.approx(expected, rel=1e-12)


def test_r_t_is_zero_at_or_below_the_threshold_and_positive_above():
    t = np.arange(1, 11)
    r4 = theory.r_t(t, 0.999, threshold=4.0)
    r5 = theory.r_t(t, 0.999, threshold=5.0)
    assert np.all(r4[:4] == 0.0) and np.all(r4[4:] > 0.0)
    assert np.all(r5[:5] == 0.0) and np.all(r5[5:] > 0.0)
    np.testing.assert_array_equal(r4[5:], r5[5:])
    assert not np.any(np.isnan(theory.r_t(np.arange(1, 100), np.array([0.5, 0.6, 0.61])[:, None])))


def test_r_t_increases_to_one():
    r = theory.r_t(np.arange(5, 100_001), 0.999)
    assert np.all(np.diff(r[:20_000]) > 0)
    assert np.all(np.diff(r) >= 0)
    assert r[-1] == pytest.approx(1.0, abs=1e-9)
    assert np.all(r <= 1.0)


def test_r_t_is_zero_forever_when_beta2_is_at_most_0_6():
    assert np.all(theory.r_t(np.arange(1, 1000), 0.6) == 0.0)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="beta2"):
        theory.rho_t(3, 1.0)
    with pytest.raises(ValueError, match="step count"):
        theory.rho_t(0, 0.9)
    with pytest.raises(ValueError, match="threshold"):
        theory.r_t(10, 0.9, threshold=3.0)


@pytest.mark.parametrize("beta2", [0.999, 1 - 1e-7, 1 - 1e-9, 1 - 1e-11])
def test_rho_t_keeps_its_digits_for_beta2_close_to_one(beta2):
    """rho_inf - 2 t b^t / (1 - b^t) subtracts two numbers of about 2/(1-b); the mean-age form does not."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    b = mpmath.mpf(beta2)  # the float64 value exactly
    for t in (2, 5, 6, 1000):
        exact = 2 / (1 - b) - 1 - 2 * t * b**t / (1 - b**t)
        assert theory.rho_t(t, beta2) == pytest.approx(float(exact), rel=1e-13, abs=0)
    if beta2 < 1 - 1e-8:
        assert theory.first_adaptive_step(beta2, 5.0) == 6 and theory.r_t(5, beta2, threshold=5.0) == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: theory.rho_t(5, np.nan),
        lambda: theory.rho_t(np.nan, 0.999),
        lambda: theory.rho_t(np.inf, 0.999),
        lambda: theory.first_adaptive_step(np.nan),
        lambda: theory.r_t(10, np.nan),
        lambda: theory.r_t(10, 0.999, threshold=np.nan),
        lambda: theory.r_t_exact(10, 0.999, threshold=np.nan),
        lambda: theory.variance_psi_exact(np.nan),
        lambda: theory.mean_psi_exact(np.nan),
    ],
)
def test_nan_is_refused_not_returned(call):
    with pytest.raises(ValueError):
        call()


def test_rho_t_stays_finite_up_to_the_largest_float():
    for t in (9e307, 1.7e308):
        assert theory.rho_t(t, 0.999) == pytest.approx(theory.rho_inf(0.999), rel=1e-15)
        assert theory.r_t(t, 0.999) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("beta2", [0.2, 0.5, 0.9, 0.999, 1 - 1e-9])
def test_rho_t_is_exactly_one_at_the_first_step(beta2):
    assert float(theory.rho_t(1, beta2)) == 1.0
