"""tools/test_record.py: a pytest run as a JSON record, and the committed record of the CUDA tests."""

import copy
import json
from importlib.resources import files

import pytest

from tools import test_record

SAMPLE_TESTS = """
import pytest

def test_passes():
    assert True

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    assert x < 2
"""


def test_a_run_is_recorded_test_by_test(tmp_path, monkeypatch):
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS)
    out = tmp_path / "record.json"
    monkeypatch.chdir(tmp_path)
    status = test_record.main(["run", "--out", str(out), "--", "-q", "test_sample.py"])
    assert status == 1  # pytest's own exit status: tests failed
    document = test_record.check_record(json.loads(out.read_text()))
    (run,) = document["runs"]
    assert run["counts"] == {"passed": 2, "failed": 2, "error": 0, "skipped": 1}
    outcomes = {test["id"]: test["outcome"] for test in run["tests"]}
    assert outcomes["test_sample.py::test_fails"] == "failed"
    assert outcomes["test_sample.py::test_param[2]"] == "failed"
    assert outcomes["test_sample.py::test_skipped"] == "skipped"
    failed = next(t for t in run["tests"] if t["id"] == "test_sample.py::test_fails")
    assert "one is not two" in failed["message"]
    assert document["provenance"]["command"].endswith("test_sample.py")
    assert document["provenance"]["device"]["type"] in ("cpu", "cuda")


def test_no_report_writes_no_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "record.json"
    out.write_text("previous")
    assert test_record.main(["run", "--out", str(out), "--", "--no-such-option"]) != 0
    assert out.read_text() == "previous"


def committed_record():
    return json.loads(files("radam").joinpath("data", "test-records", "cuda-nvidia-h200.json").read_text())


def test_the_committed_cuda_record_is_well_formed():
    document = test_record.check_record(committed_record())
    assert document["provenance"]["device"]["type"] == "cuda"
    assert sum(run["counts"]["passed"] for run in document["runs"]) > 0


@pytest.mark.parametrize("break_it", ["schema", "count", "outcome", "listed"])
def test_a_record_that_contradicts_itself_is_refused(break_it):
    document = copy.deepcopy(committed_record())
    run = document["runs"][-1]
    if break_it == "schema":
        document["schema"] = "radam.test-record/0"
    elif break_it == "count":
        run["counts"]["failed"] = 0  # names three failures, counts none
    elif break_it == "outcome":
        run["tests"][0]["outcome"] = "broken"
    else:
        run["listed"] = "all"  # names 3 of 33 tests
    with pytest.raises(ValueError):
        test_record.check_record(document)
