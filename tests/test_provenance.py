"""One provenance format for every result file the package writes: what it records, and its one-line summary."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import torch

from radam import _provenance

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"command", "commit", "dirty", "date", "device", "versions"}


def test_record_names_command_commit_device_versions_and_seeds():
    record = _provenance.record(
        "python -m radam.experiments run x", torch.device("cpu"), seeds=range(3), threads=2, processes=4
    )
    assert set(record) == KEYS | {"seeds"} and record["seeds"] == [0, 1, 2]
    assert record["device"] == {**record["device"], "type": "cpu", "torch_threads": 2, "processes": 4}
    assert record["versions"]["torch"] == torch.__version__ and record["date"].endswith("+00:00")
    assert isinstance(record["dirty"], bool)
    if (ROOT / ".git").exists():  # a checkout: the commit is HEAD's
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert record["commit"] == head.strip() and re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    assert "seeds" not in _provenance.record("c", torch.device("cpu"))


def test_outside_a_checkout_the_commit_is_none(monkeypatch, tmp_path):
    monkeypatch.setattr(_provenance, "_PACKAGE", tmp_path)
    assert _provenance.git_commit() == (None, False)


def test_summary_reads_both_formats():
    new = {
        "command": "c",
        "commit": "0123456789abcdef" * 2 + "01234567",
        "dirty": True,
        "date": "2026-12-03",
        "device": {"type": "cpu", "name": "AMD EPYC", "logical_cpus": 2, "torch_threads": 1, "processes": 8},
        "versions": {"torch": "2.13.0+cpu"},
    }
    assert _provenance.summary(new) == (
        "device: cpu: AMD EPYC, 1 thread in each of 8 processes, 2 cores visible; "
        "torch 2.13.0+cpu; commit 0123456789ab+dirty; 2026-12-03"
    )
    gpu = {**new, "dirty": False, "device": {"type": "cuda", "name": "NVIDIA H200"}}
    assert _provenance.summary(gpu).startswith("device: cuda: NVIDIA H200; torch 2.13.0+cpu; commit 0123456789ab;")
    first = {
        "command": "c",
        "git_commit": "d64278b1ad272f4aca597bf11ca6cfd8c7e98491",
        "date": "2026-12-03",
        "device": "cpu: x86_64, 1 threads in each of 8 processes, 2 cores visible",
        "torch_version": "2.13.0",
    }
    assert _provenance.summary(first) == (
        "device: cpu: x86_64, 1 thread in each of 8 processes, 2 cores visible; "
        "torch 2.13.0; commit d64278b1ad27; 2026-12-03"
    )


def test_bench_carries_the_same_record_at_its_top_level(monkeypatch):
    from radam import bench

    monkeypatch.setitem(bench.CASES, "tiny", lambda: [(3,)])
    result = bench.run("cpu", cases=["tiny"], impls=["radam-default"], repeats=1, warmup=0, command="c", copy_mib=1)
    record = _provenance.record("c", torch.device("cpu"))
    assert KEYS <= set(result) and result["schema"] == bench.SCHEMA
    assert {key: result[key] for key in KEYS - {"date", "device"}} == {k: record[k] for k in KEYS - {"date", "device"}}
    assert {k: v for k, v in result["device"].items() if not k.startswith("load_average")} == record["device"]
