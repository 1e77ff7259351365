"""Timing: one step on a GPU or a CPU, the copy bandwidth, and every implementation of one case taking turns."""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from radam.bench.cases import CASES
from radam.bench.implementations import IMPLEMENTATIONS, Step, _ignore

__all__ = ["time_step", "time_step_and_host", "copy_bandwidth", "run_case"]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step: Callable[[], Any], device: torch.device) -> float:
    """Milliseconds of one call of ``step``, host overhead included (CUDA events after a sync on a GPU)."""
    return time_step_and_host(step, device)[0]


def time_step_and_host(step: Callable[[], Any], device: torch.device) -> tuple[float, float]:
    """Milliseconds of one call of ``step`` as :func:`time_step` measures it, and the host's share: the time until
    ``step`` returned (on a GPU, when the work is queued, not done). Equal times mean the host was the limit."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        begin = time.perf_counter()
        step()
        host = time.perf_counter() - begin
        end.record()
        end.synchronize()
        return start.elapsed_time(end), host * 1e3
    begin = time.perf_counter()
    step()
    host = (time.perf_counter() - begin) * 1e3
    return host, host


def copy_bandwidth(device: torch.device, n_bytes: int = 1 << 30, repeats: int = 20) -> float:
    r"""Device-to-device copy bandwidth in GB/s: :math:`2 \times` bytes over the median time of ``dst.copy_(src)``."""
    n = n_bytes // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    times = [time_step(lambda: dst.copy_(src), device) for _ in range(repeats)]
    return 2 * n * 4 / (statistics.median(times) * 1e-3) / 1e9


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "median_ms": statistics.median(times),
        "p10_ms": quantile(0.1),
        "p90_ms": quantile(0.9),
        "samples": len(times),
    }


def _call(step: Step) -> None:
    """One untimed call of ``step``, with its ``before`` and ``after``."""
    getattr(step, "before", _ignore)()
    step()
    getattr(step, "after", _ignore)()


@contextlib.contextmanager
def _without_gc() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration, after a collection (as ``timeit`` times): a collection
    set off by one implementation's allocations would otherwise land in another's timed step."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_case(
    case: str,
    impls: list[str],
    device: torch.device,
    repeats: int,
    warmup: int,
    seed: int = 0,
    tuning: Any = None,
    steps_per_turn: int = 1,
    values: bool = True,
) -> dict[str, Any]:
    """Time every implementation on one parameter list; the implementations take turns, ``steps_per_turn`` steps
    each per round. ``values=False`` (the host-only mode, whose kernel reads nothing) leaves the parameters and
    gradients uninitialised and times with the garbage collector off."""
    shapes = CASES[case]()
    generator = torch.Generator(device=device).manual_seed(seed)

    def make(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, device=device, generator=generator) if values else torch.empty(shape, device=device)

    params = [make(s).requires_grad_() for s in shapes]
    for p in params:
        p.grad = make(p.shape)
    n_params = sum(p.numel() for p in params)
    steps: dict[str, Step] = {}
    results: dict[str, dict[str, Any]] = {}
    for name in impls:
        try:
            steps[name] = IMPLEMENTATIONS[name](params, tuning)
            for _ in range(warmup):
                _call(steps[name])
            _synchronize(device)
        except Exception as error:  # an implementation this machine cannot run (no Triton, no compiler, ...)
            results[name] = {"error": f"{type(error).__name__}: {error}".splitlines()[0][:300]}
            steps.pop(name, None)
    times: dict[str, list[float]] = {name: [] for name in steps}
    host_times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    with _without_gc() if not values else contextlib.nullcontext():
        for round_index in range(repeats):
            shift = round_index % max(len(order), 1)
            for name in order[shift:] + order[:shift]:
                step = steps[name]
                for _ in range(steps_per_turn):
                    getattr(step, "before", _ignore)()
                    total, host = time_step_and_host(step, device)
                    getattr(step, "after", _ignore)()
                    times[name].append(total)
                    host_times[name].append(host)
    for name in impls:
        if name in times:
            results[name] = {**_summary(times[name]), "host_median_ms": statistics.median(host_times[name])}
    return {"n_params": n_params, "n_tensors": len(params), "results": results, "times_ms": times}
