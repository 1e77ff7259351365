"""The benchmark's machinery on tiny inputs (never its timings): lists, JSON provenance, atomic writing, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from radam import bench


def test_gpt2_small_shapes():
    shapes = bench.gpt2_small_shapes()
    assert len(shapes) == 148
    assert sum(math.prod(s) for s in shapes) == 124_439_808


def test_cpu_list_has_about_ten_million_parameters():
    assert 9.5e6 < sum(math.prod(s) for s in bench.cpu10m_shapes()) < 11e6


@pytest.fixture
def tiny_case(monkeypatch):
    monkeypatch.setitem(bench.CASES, "tiny", lambda: [(10,), (3, 4), ()])
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


def test_run_records_provenance_and_results(tiny_case):
    result = bench.run("cpu", cases=["tiny"], impls=["radam-default", "torch-radam-default", "radam-fused"],
                       repeats=3, warmup=1, command="test", copy_mib=1)
    assert result["device"]["type"] == "cpu" and result["device"]["name"]
    assert result["versions"]["torch"] == torch.__version__
    assert result["command"] == "test" and result["date"].endswith("+00:00")
    assert result["copy_bandwidth_gb_s"] > 0
    case = result["cases"]["tiny"]
    assert case["n_params"] == 23 and case["n_tensors"] == 3
    assert case["floor_ms"] == pytest.approx(28 * 23 / (result["copy_bandwidth_gb_s"] * 1e9) * 1e3)
    for name in ("radam-default", "torch-radam-default"):
        r = case["results"][name]
        assert r["samples"] == 3 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["host_median_ms"] == r["median_ms"]  # on a CPU the step is done when the call returns
    assert "RuntimeError" in case["results"]["radam-fused"]["error"]  # no CUDA here: recorded, not raised
    assert set(case["ratios"]) == set(case["paired_ratios"]) == {"radam-default / torch-radam-default"}
    assert case["paired_ratios"]["radam-default / torch-radam-default"] > 0


def test_steps_really_happen(tiny_case):
    """Every timed call is an optimizer step: the parameters move."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.randn(5, generator=generator).requires_grad_()]
    params[0].grad = torch.ones(5)
    before = params[0].detach().clone()
    step = bench.IMPLEMENTATIONS["radam-default"](params)
    bench.time_step(step, torch.device("cpu"))
    assert not torch.equal(params[0].detach(), before)


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "sub" / "result.json"
    bench.write_json({"a": 1}, path)
    bench.write_json({"a": 2}, path)
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    with pytest.raises(TypeError):
        bench.write_json({"a": object()}, path)  # a failed write leaves the old file and no temporary
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_cli_writes_json_named_after_the_device(tiny_case, tmp_path, capsys):
    result = bench.main(["--device", "cpu", "--cases", "tiny", "--impls", "radam-default,torch-radam-default",
                         "--repeats", "2", "--warmup", "1", "--copy-mib", "1", "--out-dir", str(tmp_path)])
    (written,) = tmp_path.iterdir()
    assert written.name == bench.default_filename(result) and written.name.startswith("cpu-")
    saved = json.loads(written.read_text())
    assert saved["command"].startswith("python -m radam.bench --device cpu")
    assert "ratio radam-default / torch-radam-default" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--impls", "no-such-implementation"])
    capsys.readouterr()
    for option, value, message in (("--repeats", "0", "0 is less than 1"), ("--warmup", "-1", "-1 is less than 0"),
                                   ("--threads", "two", "'two' is not an integer")):
        with pytest.raises(SystemExit) as info:
            bench.main(["--device", "cpu", option, value])
        assert info.value.code == 2 and option in (err := capsys.readouterr().err) and message in err


def test_committed_cpu_results_name_the_cpu():
    """The committed CPU benchmark names its CPU and carries its provenance."""
    from importlib.resources import files

    found = [p for p in files("radam").joinpath("data", "bench").iterdir() if p.name.startswith("cpu-")]
    assert found, "no committed CPU benchmark under radam/data/bench"
    for path in found:
        result = json.loads(path.read_text())
        assert result["device"]["type"] == "cpu" and result["device"]["name"]
        assert result["commit"] and result["date"] and result["command"].startswith("python -m radam.bench")
        assert "cpu10m" in result["cases"]
        assert "radam-default / torch-radam-default" in result["cases"]["cpu10m"]["ratios"]
