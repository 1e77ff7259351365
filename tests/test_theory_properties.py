"""Property tests of radam.theory over random arguments (hypothesis)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radam import theory

beta2s = st.floats(min_value=0.5, max_value=0.99999)
steps = st.integers(min_value=1, max_value=10**6)


@settings(max_examples=200, deadline=None)
@given(t=steps, beta2=beta2s)
def test_kish_never_counts_fewer_samples_than_rho_t_and_neither_exceeds_t_or_rho_inf(t, beta2):
    rho = theory.rho_t(t, beta2)
    kish = theory.kish_effective_sample_size(t, beta2)
    assert rho <= kish * (1 + 1e-12)
    assert kish <= min(t, theory.rho_inf(beta2)) * (1 + 1e-12)
    assert 1 - 1e-12 <= rho


@settings(max_examples=100, deadline=None)
@given(t=st.integers(min_value=1, max_value=20_000), beta2=beta2s)
def test_numeric_centre_of_mass_match_is_rho_t(t, beta2):
    assert theory.sma_length_numeric(t, beta2) == pytest.approx(theory.rho_t(t, beta2), rel=1e-9, abs=1e-9)
    com = theory.ema_centre_of_mass(t, beta2)
    assert (t + 1) / 2 - 1e-9 <= com <= t  # between the SMA of everything and the newest sample


@settings(max_examples=200, deadline=None)
@given(rho=st.floats(min_value=2.05, max_value=100.0), sigma=st.floats(min_value=1e-3, max_value=1e3))
def test_moments_are_consistent_and_scale_with_sigma(rho, sigma):
    var = theory.variance_psi_exact(rho, sigma)
    from_moments = theory.mean_psi_squared(rho, sigma) - theory.mean_psi_exact(rho, sigma) ** 2
    assert var == pytest.approx(from_moments, rel=1e-8)
    assert var == pytest.approx(theory.variance_psi_exact(rho) / sigma**2, rel=1e-13)
    if rho > 4:
        assert var < theory.variance_psi_approx(rho, sigma)


@settings(max_examples=100, deadline=None)
@given(t=st.integers(min_value=5, max_value=10**5), beta2=st.floats(min_value=0.9, max_value=0.9999))
def test_exact_rectifier_is_at_least_the_papers_and_both_at_most_one(t, beta2):
    paper = theory.r_t(t, beta2)
    exact = theory.r_t_exact(t, beta2)
    assert 0 < paper <= exact * (1 + 1e-12)
    assert exact <= 1 + 1e-12
