"""radam.book: rounding for printed and glued numbers, setup's determinism, show_source, tables."""

import numpy as np
import pytest
import torch

import radam.book
from radam import theory


@pytest.mark.parametrize(
    "value, digits, expected",
    [
        (2 / 3, 4, 0.6667),
        (np.float64(1234.5678), 4, 1235),
        (np.array(0.025821112801863704), 4, 0.02582),
        (58677.9457, 2, 59000),
        (2.132e42, 4, 2.132e42),
        (np.int64(7), 4, 7),
        (np.bool_(True), 4, True),
        (np.float64(2.0) > 3, 4, False),
        ([1 / 3, 2 / 3], 2, [0.33, 0.67]),
        (0.0, 4, 0.0),
    ],
)
def test_round_significant(value, digits, expected):
    rounded = radam.book.round_significant(value, digits)
    assert rounded == expected
    assert type(rounded) is type(expected)


def test_round_significant_refuses_what_it_cannot_round():
    with pytest.raises(TypeError, match="ndarray"):
        radam.book.round_significant(np.arange(3))


def test_setup_makes_random_draws_repeatable():
    radam.book.setup(seed=3)
    first = (torch.rand(3), np.random.rand(3))
    radam.book.setup(seed=3)
    second = (torch.rand(3), np.random.rand(3))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert torch.get_num_threads() == 1
    torch.use_deterministic_algorithms(False)


def test_glue_returns_the_rounded_value():
    assert radam.book.glue("unit_test_value", 0.123456) == 0.1235


def test_show_source_is_the_package_source():
    shown = radam.book.show_source(theory.rho_t)
    assert shown.text.startswith("def rho_t(")
    assert shown._repr_markdown_().startswith("```python\ndef rho_t(")


def test_show_source_can_leave_the_docstring_out():
    shown = radam.book.show_source(theory.psi_squared, docstring=False).text
    assert shown.startswith("def psi_squared(")
    assert '"""' not in shown and "math::" not in shown
    assert "return 1.0 / (grads**2 @ weights)" in shown
    method = radam.book.show_source(radam.RAdam.step, docstring=False).text
    assert "    def step(self" in method and '"""' not in method.split("def step", 1)[1].split("\n", 2)[1]


def test_table_rounds_numbers_and_keeps_strings():
    rows = [[3, 1.090137, "+1.2%"], [np.array(20000.0), theory.variance_psi_exact(2000.0) / 1000, "a|b"]]
    shown = radam.book.table(["rho", "Var", "error"], rows)
    assert shown._repr_markdown_().splitlines() == [
        "| rho | Var | error |",
        "|---:|---:|:---|",
        "| 3 | 1.09 | +1.2% |",
        "| 20,000 | 2.505e-7 | a\\|b |",
    ]
    assert repr(shown).splitlines() == ["   rho       Var  error", "     3      1.09  +1.2%", "20,000  2.505e-7  a|b"]
    assert "| 2000 |" in radam.book.table(["n"], [[2000]])._repr_markdown_()


def test_table_right_aligns_formatted_numbers_only():
    shown = radam.book.table(["a", "b", "c"], [["+1.5%", "\u2014", "x"], ["-2e-5", "3", "1"]])
    assert shown._repr_markdown_().splitlines()[1] == "|---:|---:|:---|"


def test_table_refuses_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        radam.book.table(["a", "b"], [[1, 2, 3]])


def test_experiment_results_loads_the_cache_or_runs_the_full_size(monkeypatch):
    """One call for a chapter's FULL_RUN switch: the cached CPU result, or the GPU-sized run's validated file."""
    from radam import experiments

    cached = radam.book.experiment_results("lr-robustness", full=False)
    assert cached == experiments.load_cached("lr-robustness") and cached["size"] == "default"
    assert radam.book.provenance_line(cached).startswith("device: cpu")
    calls = []

    def run_experiment(name, size):
        calls.append((name, size))
        return experiments.cache_path("lr-robustness")

    monkeypatch.setattr(experiments, "run_experiment", run_experiment)
    assert radam.book.experiment_results("lr-robustness", full=True) == cached
    assert calls == [("lr-robustness", "full")]
