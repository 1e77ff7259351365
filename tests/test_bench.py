"""The benchmark's machinery on tiny inputs (never its timings): lists, JSON provenance, atomic writing, the CLI."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import pytest
import torch

from radam import bench, fused

needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="the host-only mode runs the fused path, which needs Triton"
)


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
    result = bench.run(
        "cpu",
        cases=["tiny"],
        impls=["radam-default", "torch-radam-default", "radam-fused"],
        repeats=3,
        warmup=1,
        command="test",
        copy_mib=1,
    )
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


class _RecordingKernel:
    """Stands in for the Triton kernel: records each launch's grid and arguments."""

    def __init__(self):
        self.launches = []

    def __getitem__(self, grid):
        return lambda *args, **constants: self.launches.append((grid, args, constants))


@needs_triton
@pytest.mark.parametrize("name", bench.HOST_ONLY_IMPLS)
def test_host_only_steps_take_the_fused_path_and_launch_nothing(tiny_case, monkeypatch, name):
    """What the host-only mode times: the fused path's host work up to the launch, made once per step with the
    plan's arguments, and no kernel (the parameters and step counts do not move); the new-gradient variant gives the
    optimizer new gradient tensors at each step and puts the shared ones back afterwards."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    kernel = _RecordingKernel()
    params = [torch.randn(s).requires_grad_() for s in [(10,), (3, 4), ()]]
    for p in params:
        p.grad = torch.randn(p.shape)
    shared = [p.grad for p in params]
    before = [p.detach().clone() for p in params]
    step = bench.IMPLEMENTATIONS[name](params, fused.Tuning(block_size=16, kernel=kernel))
    seen = []
    for _ in range(3):
        getattr(step, "before", bench._ignore)()
        seen.append([id(p.grad) for p in params])
        step()
        getattr(step, "after", bench._ignore)()
    assert [p.grad for p in params] == shared
    assert (seen[0] != seen[1]) == (name == "radam-fused-new-grads")
    assert len(kernel.launches) == 3
    for grid, args, constants in kernel.launches:
        plan, n_tensors, n_blocks = args[:3]
        assert n_tensors == 3 and n_blocks == 3 and grid == (3,)  # 10 elements, 12, 1: one block of 16 each
        assert constants["BLOCK"] == 16 and plan.dtype == torch.int64
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before))


@needs_triton
def test_host_only_run_records_the_host_time_and_its_provenance(tiny_case):
    result = bench.run("cpu", cases=["tiny"], repeats=2, warmup=1, command="test", host_only=True)
    assert result["mode"] == "host-only" and result["copy_bandwidth_gb_s"] is None
    assert result["device"]["type"] == "cpu" and result["device"]["name"]
    assert result["device"]["load_average_before"] >= 0 and result["device"]["load_average_after"] >= 0
    assert result["versions"]["triton"] and "nothing" in result["settings"]["fused_kernel"]
    assert result["settings"]["steps_per_turn"] == bench.HOST_ONLY_STEPS_PER_TURN
    case = result["cases"]["tiny"]
    assert case["floor_ms"] is None and not case["ratios"]
    for name in bench.HOST_ONLY_IMPLS:
        r = case["results"][name]
        assert r["samples"] == 2 * bench.HOST_ONLY_STEPS_PER_TURN and r["host_median_ms"] > 0
    assert "TRITON_INTERPRET" not in os.environ  # set for the run only
    assert bench.default_filename(result).startswith("host-cpu-")
    assert "radam-fused" in bench.format_table(result)
    with pytest.raises(ValueError, match="CPU"):
        bench.run("cuda", host_only=True)


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
    result = bench.main(
        [
            "--device",
            "cpu",
            "--cases",
            "tiny",
            "--impls",
            "radam-default,torch-radam-default",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--copy-mib",
            "1",
            "--out-dir",
            str(tmp_path),
        ]
    )
    (written,) = tmp_path.iterdir()
    assert written.name == bench.default_filename(result) and written.name.startswith("cpu-")
    saved = json.loads(written.read_text())
    assert saved["command"].startswith("python -m radam.bench --device cpu")
    assert "ratio radam-default / torch-radam-default" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--impls", "no-such-implementation"])
    capsys.readouterr()
    for arguments, message in (
        (["--host-only", "--device", "cuda"], "runs on the CPU"),
        (["--fused-block-size", "48"], "--fused-block-size must be a power of two"),
    ):
        with pytest.raises(SystemExit) as info:
            bench.main(arguments)
        assert info.value.code == 2 and message in capsys.readouterr().err
    for option, value, message in (
        ("--repeats", "0", "0 is less than 1"),
        ("--warmup", "-1", "-1 is less than 0"),
        ("--threads", "two", "'two' is not an integer"),
    ):
        with pytest.raises(SystemExit) as info:
            bench.main(["--device", "cpu", option, value])
        assert info.value.code == 2 and option in (err := capsys.readouterr().err) and message in err


@needs_triton
def test_cli_host_only_writes_json_and_leaves_the_fused_defaults_alone(tiny_case, tmp_path, capsys):
    """The fused tunables reach the run as arguments: the module's defaults stay as they were."""
    default = fused.DEFAULT_TUNING
    out = tmp_path / "host.json"
    result = bench.main(
        [
            "--host-only",
            "--cases",
            "tiny",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--fused-block-size",
            "64",
            "--out",
            str(out),
        ]
    )
    assert fused.DEFAULT_TUNING is default and fused.DEFAULT_TUNING.block_size == fused.BLOCK_SIZE
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result)) and saved["settings"]["fused_block_size"] == 64
    assert (
        saved["command"] == "python -m radam.bench --host-only --cases tiny --repeats 2 --warmup 1 "
        f"--fused-block-size 64 --out {out}"
    )
    assert "Host time of a fused step" in capsys.readouterr().out


def test_committed_host_only_results_name_the_cpu():
    """The committed host-only benchmark: the fused step's host time for the GPT-2 and small lists, on a named CPU,
    with its provenance."""
    from importlib.resources import files

    found = [p for p in files("radam").joinpath("data", "bench").iterdir() if p.name.startswith("host-cpu-")]
    assert found, "no committed host-only benchmark under radam/data/bench"
    for path in found:
        result = json.loads(path.read_text())
        assert result["mode"] == "host-only" and result["device"]["type"] == "cpu" and result["device"]["name"]
        assert result["commit"] and result["date"] and result["command"].startswith("python -m radam.bench --host-only")
        assert result["versions"]["torch"] and result["versions"]["triton"]
        for case, n_tensors in (("gpt2", 148), ("small", 2000)):
            entry = result["cases"][case]
            assert entry["n_tensors"] == n_tensors
            assert entry["results"]["radam-fused"]["host_median_ms"] > 0


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
