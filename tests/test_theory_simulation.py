"""The paper's Figure 9 simulation and the effective warmup periods of RAdam and the untuned warmups."""

import numpy as np
import pytest

from radam import theory


@pytest.fixture(scope="module")
def sim():
    return theory.simulate_adaptive_lr_variance(mu=(0.0, 1.0, 10.0), n_runs=4000, n_steps=2000, seed=7)


def test_simulation_shapes_and_determinism(sim):
    assert sim.var_psi.shape == sim.var_rectified.shape == (3, 2000)
    assert sim.steps[0] == 1 and sim.steps[-1] == 2000
    again = theory.simulate_adaptive_lr_variance(mu=(0.0, 1.0, 10.0), n_runs=4000, n_steps=20, seed=7)
    np.testing.assert_array_equal(again.var_psi, sim.var_psi[:, :20])
    np.testing.assert_array_equal(sim.var_rectified, sim.r**2 * sim.var_psi)
    assert np.all(sim.var_rectified[:, :4] == 0.0)  # threshold 4: steps 1-4 take no adaptive step


def test_unrectified_variance_falls_by_orders_of_magnitude(sim):
    var = sim.var_psi[0]
    assert var[4] / var[1999] > 300  # t = 5 against t = 2000
    assert np.all(np.diff(var[4:100]) < 0)


def test_rectified_variance_is_roughly_constant_after_the_first_steps(sim):
    plateau = theory.variance_psi_exact(theory.rho_inf(0.999))  # what r_t aims at: Var[psi] at rho_inf
    rect = sim.var_rectified[0]
    late = rect[19:]  # t >= 20
    assert 0.75 * plateau < late.min() and late.max() < 1.1 * plateau
    assert late.max() / late.min() < 1.35
    # the unrectified variance over the same steps spans a factor of about 100
    assert sim.var_psi[0, 19:].max() / sim.var_psi[0, 19:].min() > 50
    # in the first adaptive steps Eq. 5 overestimates Var[psi], so r_t is too small and so is the rectified variance
    assert rect[4] < 0.5 * plateau


def test_rectified_variance_matches_its_exact_prediction(sim):
    # Var[r_t psi_t] = r_t^2 Var[psi_t], with Var[psi_t] exact for the EMA (theory.ema_psi_moments): the prediction
    # is 0.30 of the plateau at t = 5, 0.72 at t = 10, 0.87-0.97 from t = 20 on (the dip near t = 1000 is the
    # EMA-as-SMA error, see test_theory_ema). The simulation follows it within its sampling error.
    plateau = theory.variance_psi_exact(theory.rho_inf(0.999))
    for t in [5, 10, 20, 100, 1000, 2000]:
        predicted = theory.r_t(t, 0.999) ** 2 * theory.ema_psi_moments(t, 0.999)[1]
        assert sim.var_rectified[0, t - 1] == pytest.approx(predicted, rel=0.15)
        if t >= 20:
            assert 0.85 * plateau < predicted < plateau


def test_simulated_variance_matches_the_exact_ema_variance(sim):
    # zero-mean gradients: Var[psi_t] is known exactly (theory.ema_psi_moments); 4000 runs give a relative standard
    # error of about sqrt(2/4000) = 2.2% (more at small t, where psi is heavier-tailed)
    for t in [50, 200, 1000, 2000]:
        exact = theory.ema_psi_moments(t, 0.999)[1]
        assert sim.var_psi[0, t - 1] == pytest.approx(exact, rel=0.12)


def test_a_non_zero_mean_shrinks_the_variance(sim):
    assert np.all(sim.var_psi[1, 9:] < sim.var_psi[0, 9:])
    assert np.all(sim.var_psi[2, 9:] < 1e-3 * sim.var_psi[0, 9:])


def test_simulation_streams_over_steps():
    # 6 means x 1,000 runs x 1,000 steps: a runs-by-steps array would need 6 * 1000 * 1000 * 8 bytes = 48 MB. The
    # streaming loop holds a few (6, 1000) arrays (48 kB each) plus the (6, 1000) outputs.
    import tracemalloc

    tracemalloc.start()
    theory.simulate_adaptive_lr_variance(n_runs=1000, n_steps=1000, seed=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000
