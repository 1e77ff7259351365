"""radam.book: rounding for printed and glued numbers, setup's determinism, show_source, tables."""

from pathlib import Path

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


def test_cached_results_lists_every_result_file_of_the_package():
    """The experiments' results and the benchmark records, by their path under radam/data/ (not the test records)."""
    data = Path(radam.__file__).parent / "data"
    files = [*data.glob("*.json"), *data.glob("bench/*.json")]
    expected = {str(path.relative_to(data)) for path in files}
    found = radam.book.cached_results()
    assert set(found) == expected and {"lr-robustness.json", "bench/cuda-nvidia-h200.json"} <= set(found)
    assert not any(path.startswith("test-records/") for path in found)
    assert found["lr-robustness.json"] == radam.book.experiment_results("lr-robustness")


BENCH = {  # a benchmark record of the first format: provenance at the top level, no "dirty"
    "schema": 1,
    "command": "python -m radam.bench --device cuda --out-dir radam/data/bench",
    "commit": "3cbaf3800bfeedfce13e86055fb9d0454708f370",
    "date": "2026-11-26T01:44:01+00:00",
    "device": {"type": "cuda", "name": "NVIDIA H200", "capability": "9.0"},
    "versions": {"python": "3.12.3", "torch": "2.11.0+cu130", "triton": "3.6.0", "numpy": "2.5.2", "cuda": "13.0"},
    "cases": {"gpt2": {}},
}


def test_provenance_of_a_benchmark_record():
    assert radam.book.provenance_line(BENCH) == (
        "device: cuda: NVIDIA H200; torch 2.11.0+cu130; commit 3cbaf3800bfe; 2026-11-26T01:44:01+00:00"
    )
    fields = radam.book.provenance_fields({**BENCH, "dirty": True, "mode": "host-only"})
    assert fields == {
        "what": "the fused step's host work, timed on a CPU",
        "command": BENCH["command"],
        "commit": "3cbaf3800bfe+dirty",
        "device": "cuda: NVIDIA H200",
        "machine": "NVIDIA H200",
        "versions": "Python 3.12.3, torch 2.11.0+cu130, numpy 2.5.2, Triton 3.6.0, CUDA 13.0",
        "date": "2026-11-26 01:44:01 UTC",
    }
    assert radam.book.provenance_fields(BENCH)["what"] == "step times against torch on a GPU"


def test_provenance_of_an_experiment_in_the_first_format_keeps_its_uncommitted_mark():
    first = {
        "command": "python -m radam.experiments run x",
        "package_version": "0.1.0",
        "git_commit": "e25b23642c4797f6baf815c45479cd34e300ec38+uncommitted-changes",
        "device": "cpu: x86_64, 1 threads in each of 2 processes, 2 cores visible",
        "torch_version": "2.13.0+cpu",
        "numpy_version": "2.4.6",
        "python_version": "3.11.7",
        "date": "2026-12-03T11:18:14+00:00",
        "seeds": [0, 1],
    }
    document = {"experiment": "x", "size": "default", "provenance": first, "runs": [{}, {}, {}]}
    document["config"] = {"description": "Figure 9 of the paper: something"}
    fields = radam.book.provenance_fields(document)
    assert fields["what"] == "3 training runs, CPU size: Figure 9 of the RAdam paper"
    assert fields["commit"] == "e25b23642c47+dirty" and fields["machine"] == "x86_64 CPU"
    assert fields["device"].startswith("cpu: x86_64, 1 thread in each")
    assert fields["versions"] == "Python 3.11.7, torch 2.13.0+cpu, numpy 2.4.6, radam 0.1.0"
    assert fields["seeds"] == "0, 1"
    assert "commit e25b23642c47+dirty" in radam.book.provenance_line(document)


def test_provenance_table_of_a_test_record_names_each_run_and_its_failures():
    record = {
        "schema": "radam.test-record/1",
        "provenance": {**{k: BENCH[k] for k in ("command", "commit", "date", "device")}, "dirty": False},
        "runs": [
            {"command": "pytest a", "counts": {"passed": 3, "failed": 0}, "tests": []},
            {
                "command": "pytest b",
                "counts": {"passed": 1, "failed": 1},
                "tests": [{"id": "tests/t.py::test_x", "outcome": "failed"}, {"id": "t.py::y", "outcome": "passed"}],
            },
        ],
    }
    record["provenance"]["versions"] = {"torch": "2.11.0+cu130"}
    shown = radam.book.provenance_table("test-records/x.json", record)
    assert shown.header == ["`test-records/x.json`", "the tests that need a CUDA GPU: 4 passed, 1 failed"]
    rows = dict(shown.rows)
    assert rows["commit"] == "3cbaf3800bfe" and rows["versions"] == "torch 2.11.0+cu130"
    assert rows["run 1"] == "`pytest a`: 3 passed" and rows["run 2"] == "`pytest b`: 1 passed, 1 failed"
    assert rows["run 2 failed"] == "test_x" and "run 1 failed" not in rows and "seeds" not in rows


def test_every_shipped_file_has_a_provenance_table():
    for path, document in radam.book.cached_results().items():
        rows = dict(radam.book.provenance_table(path, document).rows)
        assert {"command", "commit", "device", "versions", "date"} <= set(rows), path
        assert "+dirty" in rows["commit"] or len(rows["commit"]) == 12, path
