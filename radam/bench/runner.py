"""A whole benchmark run: its settings, provenance, cases and ratios, as a JSON-ready dictionary; writing it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from radam import _provenance as provenance
from radam.atomic import write_json_atomically
from radam.bench.cases import BYTES_PER_PARAM, DEFAULT_CASES, HOST_ONLY_CASES
from radam.bench.implementations import DEFAULT_IMPLS, HOST_ONLY_IMPLS, LR, NO_LAUNCH, SKIP_BY_DEFAULT
from radam.bench.timing import copy_bandwidth, run_case

__all__ = ["SCHEMA", "RATIOS", "HOST_ONLY_STEPS_PER_TURN", "run", "write_json", "default_filename"]

SCHEMA = 2
"""Version of the JSON format: 2 since the provenance is that of ``radam._provenance`` (``commit`` and ``dirty``)."""
RATIOS = [
    ("radam-default", "torch-radam-default"),
    ("radam-fused", "torch-radam-foreach"),
    ("radam-fused", "torch-adam-fused"),
    ("radam-foreach", "torch-radam-foreach"),
    ("radam-forloop", "torch-radam-forloop"),
]
"""Pairs compared in each case: the ratio of their median step times, and the median of per-round ratios."""
HOST_ONLY_STEPS_PER_TURN = 100
"""In the host-only mode an implementation takes this many steps in a row per round, so that a timed step follows a
step of the same optimizer, as in a training loop, rather than another implementation's work, which empties the
caches for the first few steps of a turn (the 90th percentile shows those)."""


@contextlib.contextmanager
def _interpreter() -> Iterator[None]:
    """``TRITON_INTERPRET=1`` for the duration (the fused path then takes CPU tensors), restored afterwards."""
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = before


def run(
    device: str = "cpu",
    cases: list[str] | None = None,
    impls: list[str] | None = None,
    repeats: int = 50,
    warmup: int = 8,
    threads: int | None = None,
    command: str | None = None,
    copy_mib: int | None = None,
    tuning: Any = None,
    host_only: bool = False,
) -> dict[str, Any]:
    """Run the benchmark and return the result as a JSON-ready dictionary (see the module docstring).

    ``tuning`` (a ``radam.fused.Tuning``; default its ``DEFAULT_TUNING``) is how the fused implementations cut and
    launch their kernel. ``host_only`` times the fused path's host work on the CPU, its kernel launch replaced by
    a call that does nothing (``device`` must be ``"cpu"``; no copy bandwidth, no floors).
    """
    from radam import fused

    if host_only and device != "cpu":
        raise ValueError("the host-only benchmark runs on the CPU (device='cpu')")
    tuning = tuning or fused.DEFAULT_TUNING
    if host_only:
        tuning = dataclasses.replace(tuning, kernel=NO_LAUNCH)
    torch_device = torch.device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    kind = torch_device.type
    cases = cases or (HOST_ONLY_CASES if host_only else DEFAULT_CASES[kind])
    explicit = impls is not None  # implementations named explicitly are run even where skipped by default
    impls = impls or (HOST_ONLY_IMPLS if host_only else DEFAULT_IMPLS[kind])
    copy_mib = None if host_only else copy_mib or (1024 if kind == "cuda" else 256)
    bandwidth = None if host_only else copy_bandwidth(torch_device, n_bytes=copy_mib << 20)
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": "host-only" if host_only else "step",
        **provenance.record(command or "python -m radam.bench " + " ".join(sys.argv[1:]), torch_device),
        "settings": {
            "repeats": repeats,
            "warmup": warmup,
            "lr": LR,
            "copy_mib": copy_mib,
            "steps_per_turn": HOST_ONLY_STEPS_PER_TURN if host_only else 1,
            "fused_block_size": tuning.block_size,
            "fused_programs_per_sm": tuning.programs_per_sm,
            "fused_num_warps": tuning.num_warps,
            "fused_kernel": "none: the launch is a call that does nothing" if host_only else "triton",
            "garbage_collector": "off while timing" if host_only else "on",
            "timer": "cuda events" if kind == "cuda" else "time.perf_counter",
            "statistic": "median",
        },
        "copy_bandwidth_gb_s": bandwidth,
        "cases": {},
    }
    if kind == "cpu" and hasattr(os, "getloadavg"):  # other processes on the same cores slow every timing
        result["device"]["load_average_before"] = round(os.getloadavg()[0], 2)
    for case in cases:
        chosen = [name for name in impls if explicit or (case, name) not in SKIP_BY_DEFAULT]
        with _interpreter() if host_only else contextlib.nullcontext():
            entry = run_case(
                case,
                chosen,
                torch_device,
                repeats,
                warmup,
                tuning=tuning,
                steps_per_turn=HOST_ONLY_STEPS_PER_TURN if host_only else 1,
                values=not host_only,
            )
        entry["floor_ms"] = None if host_only else BYTES_PER_PARAM * entry["n_params"] / (bandwidth * 1e9) * 1e3
        times = entry.pop("times_ms")
        ratios, paired = {}, {}
        for ours, theirs in RATIOS:
            if ours in times and theirs in times:
                name = f"{ours} / {theirs}"
                ratios[name] = statistics.median(times[ours]) / statistics.median(times[theirs])
                # the same round's two steps ran back to back: their ratio is immune to slow drifts of the machine
                paired[name] = statistics.median(a / b for a, b in zip(times[ours], times[theirs]))
        entry["ratios"] = ratios
        entry["paired_ratios"] = paired
        result["cases"][case] = entry
    if "load_average_before" in result["device"]:
        result["device"]["load_average_after"] = round(os.getloadavg()[0], 2)
    return result


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write ``result`` to ``path`` atomically (:func:`radam.atomic.write_json_atomically`)."""
    write_json_atomically(result, path)


def default_filename(result: dict[str, Any]) -> str:
    """``cuda-nvidia-h200.json``, ``cpu-amd-epyc.json``; ``host-cpu-amd-epyc.json`` for the host-only mode."""
    slug = "".join(c if c.isalnum() else "-" for c in result["device"]["name"].lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    prefix = "host-" if result.get("mode") == "host-only" else ""
    return f"{prefix}{result['device']['type']}-{slug}.json"
