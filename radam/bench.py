r"""Step-time benchmarks of RAdam implementations: ``python -m radam.bench``.

One run measures, in one process on one device, the time of one optimizer step of several implementations over
the same parameter lists, and the device's copy bandwidth, which gives each list its floor:

.. math:: T_{\text{floor}} = \frac{28\ \text{bytes} \times N_{\text{params}}}{B_{\text{copy}}}, \qquad
          B_{\text{copy}} = \frac{2 \times \text{bytes copied}}{T_{\text{copy}}}

(an RAdam step reads :math:`\theta, g, m, v` and writes :math:`\theta, m, v`: seven float32 numbers per parameter;
a copy reads and writes each byte once). The lists:

* ``gpt2``: the 148 parameter tensors of GPT-2 small (124,439,808 parameters, the output layer tied to the
  embedding);
* ``small``: 2000 tensors of 4096 parameters (launch overhead dominates);
* ``large``: one tensor of :math:`2^{26}` parameters (bandwidth dominates);
* ``cpu10m``: a 10.5M-parameter Transformer-shaped list, the CPU benchmark.

The implementations (``--impls``): ``radam-fused`` / ``radam-foreach`` / ``radam-forloop`` / ``radam-default``
(``radam.RAdam`` with ``fused=True``, ``foreach=True``, ``foreach=False``, or no choice), ``torch-radam-foreach`` /
``torch-radam-forloop`` / ``torch-radam-default`` / ``torch-radam-compiled`` (``torch.optim.RAdam``, the last with
its ``step`` under ``torch.compile``), ``torch-adam-fused`` (``torch.optim.Adam(fused=True)``, the fastest step torch
ships for a close relative), and, on CUDA, ``radam-fused-call`` (the fused kernel called directly on lists built
once, i.e. without the optimizer's per-step Python bookkeeping) and ``radam-fused-graph`` (that call captured in a
CUDA graph and replayed: device time alone).

Timing: every implementation steps its own optimizer state over the same parameters and gradients; after
``--warmup`` steps (which also pass the switch to adaptive steps at step 6) the implementations take turns, one
step each per round for ``--repeats`` rounds, so slow drifts of the machine hit them all alike. On a GPU a step is
timed with CUDA events after a synchronisation, so host overhead counts; on a CPU with ``time.perf_counter``. The
median is reported, with the 10th and 90th percentiles, and the median time until the call returned
(``host_median_ms``; on a GPU the host's share: when it equals the step time, Python, not the GPU, set the pace).
The JSON written (atomically) records, at its top level, the provenance of ``radam._provenance.record`` (command,
commit, dirty flag, date, device, versions).

The CPU mode (``--device cpu``) doubles as the check that ``radam.RAdam``'s default path is no slower than
``torch.optim.RAdam``'s on a 10M-parameter list: it prints the ratio of their medians, and the median of the
per-round ratios (the two steps of a round run back to back, so a busy machine slows both alike).

The host-only mode (``--host-only``) measures what the host does for a fused step, on any machine: the fused path
runs on CPU tensors with the kernel launch replaced by a call that does nothing (``radam.fused.Tuning.kernel``), so
the time of ``optimizer.step()`` is the time the host spends before a GPU could start the kernel, Triton's launcher
aside. Its implementations are ``radam-fused`` (the same gradient tensors at every step, as in the GPU benchmark),
``radam-fused-new-grads`` (new gradient tensors before every step, as ``zero_grad()`` and ``backward()`` leave them;
made outside the timed call) and ``radam-fused-call`` (:func:`radam.fused.fused_radam` on lists built once).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from radam import _provenance as provenance
from radam._cli import non_negative_int, positive_int
from radam.atomic import write_json_atomically

__all__ = ["CASES", "IMPLEMENTATIONS", "copy_bandwidth", "gpt2_small_shapes", "main", "run", "write_json"]

SCHEMA = 2
"""Version of the JSON format: 2 since the provenance is that of ``radam._provenance`` (``commit`` and ``dirty``)."""
BYTES_PER_PARAM = 28  # float32: read theta, g, m, v; write theta, m, v


def gpt2_small_shapes() -> list[tuple[int, ...]]:
    """The parameter shapes of GPT-2 small (12 layers, width 768, vocabulary 50257, 1024 positions; tied output)."""
    d, vocab, positions, layers = 768, 50257, 1024, 12
    shapes: list[tuple[int, ...]] = [(vocab, d), (positions, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,)]  # ln_1, attention qkv and projection
        shapes += [(d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]  # ln_2, MLP
    return shapes + [(d,), (d,)]  # ln_f


def cpu10m_shapes() -> list[tuple[int, ...]]:
    """A Transformer-shaped list of about 10M parameters (width 256, 8 layers, vocabulary 16384)."""
    d, vocab, positions, layers = 256, 16384, 512, 8
    shapes: list[tuple[int, ...]] = [(vocab, d), (positions, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,)]
        shapes += [(d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return shapes + [(d,), (d,)]


CASES: dict[str, Callable[[], list[tuple[int, ...]]]] = {
    "gpt2": gpt2_small_shapes,
    "small": lambda: [(4096,)] * 2000,
    "large": lambda: [(2**26,)],
    "cpu10m": cpu10m_shapes,
}

DEFAULT_CASES = {"cuda": ["gpt2", "small", "large"], "cpu": ["cpu10m"]}
DEFAULT_IMPLS = {
    "cuda": [
        "radam-fused", "radam-fused-call", "radam-fused-graph", "radam-foreach", "radam-forloop",
        "torch-radam-foreach", "torch-radam-forloop", "torch-radam-compiled", "torch-adam-fused",
    ],
    "cpu": ["radam-default", "torch-radam-default", "radam-foreach", "torch-radam-foreach"],
}
RATIOS = [
    ("radam-default", "torch-radam-default"),
    ("radam-fused", "torch-radam-foreach"),
    ("radam-fused", "torch-adam-fused"),
    ("radam-foreach", "torch-radam-foreach"),
    ("radam-forloop", "torch-radam-forloop"),
]
"""Pairs compared in each case: the ratio of their median step times, and the median of per-round ratios."""
HOST_ONLY_CASES = ["gpt2", "small"]
HOST_ONLY_IMPLS = ["radam-fused", "radam-fused-new-grads", "radam-fused-call"]
HOST_ONLY_STEPS_PER_TURN = 100
"""In the host-only mode an implementation takes this many steps in a row per round, so that a timed step follows a
step of the same optimizer, as in a training loop, rather than another implementation's work, which empties the
caches for the first few steps of a turn (the 90th percentile shows those)."""
SKIP_BY_DEFAULT = {("small", "torch-radam-compiled")}  # compiling a 2000-tensor step takes minutes
LR = 1e-4

Step = Callable[[], Any]
"""One timed call. It may carry ``before`` and ``after``, called untimed around it (``radam-fused-new-grads``)."""
Factory = Callable[..., Step]
"""Makes an implementation's step for a list of parameters with gradients: ``factory(params, tuning)``, where
``tuning`` (a ``radam.fused.Tuning`` or None) is how the fused implementations cut and launch their kernel."""


class _NoLaunch:
    """Stands in for the Triton kernel in the host-only mode: ``NO_LAUNCH[grid](*arguments, **constants)`` takes
    the arguments of a launch and does nothing."""

    def __getitem__(self, grid: tuple[int, ...]) -> Callable[..., None]:
        return _ignore

    def __repr__(self) -> str:
        return "NO_LAUNCH"


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


NO_LAUNCH = _NoLaunch()


def _radam(**kwargs: Any) -> Factory:
    def make(params: list[torch.Tensor], tuning: Any = None) -> Step:
        import radam

        optimizer = radam.RAdam(params, lr=LR, **kwargs)
        optimizer._fused_steps.tuning = tuning  # how fused groups cut and launch their kernel (None: the default)
        return optimizer.step

    return make


def _radam_fused_new_grads(params: list[torch.Tensor], tuning: Any = None) -> Step:
    """The fused optimizer's step, each time with new gradient tensors (the same values, new memory), as
    ``zero_grad()`` and ``backward()`` leave them. The gradients the other implementations share are put back after
    the step, outside the timed call."""
    step = _radam(fused=True)(params, tuning)
    shared: list[torch.Tensor | None] = []

    def before() -> None:
        shared[:] = [p.grad for p in params]
        for p in params:
            p.grad = None  # the last step's new gradients are freed here, as zero_grad() frees them
        for p, g in zip(params, shared):
            p.grad = torch.empty_like(g)

    def after() -> None:
        for p, g in zip(params, shared):
            p.grad = g

    step_with_new_grads = functools.partial(step)
    step_with_new_grads.before, step_with_new_grads.after = before, after  # type: ignore[attr-defined]
    return step_with_new_grads


def _torch_radam(**kwargs: Any) -> Factory:
    def make(params: list[torch.Tensor], tuning: Any = None) -> Step:
        return torch.optim.RAdam(params, lr=LR, **kwargs).step

    return make


def _torch_radam_compiled(params: list[torch.Tensor], tuning: Any = None) -> Step:
    optimizer = torch.optim.RAdam(params, lr=LR, foreach=True)
    return torch.compile(optimizer.step)


def _torch_adam_fused(params: list[torch.Tensor], tuning: Any = None) -> Step:
    return torch.optim.Adam(params, lr=LR, fused=True).step


def _fused_lists(params: list[torch.Tensor]):
    exp_avgs = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    exp_avg_sqs = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]
    return exp_avgs, exp_avg_sqs, steps


_FUSED_OPTIONS = dict(
    lr=LR, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False, degenerate="sgd",
    threshold=5.0, rectifier="paper", amsgrad=False, maximize=False, capturable=True,
)


def _radam_fused_call(params: list[torch.Tensor], tuning: Any = None) -> Step:
    from radam.fused import fused_radam

    grads = [p.grad for p in params]
    exp_avgs, exp_avg_sqs, steps = _fused_lists(params)
    return lambda: fused_radam(params, grads, exp_avgs, exp_avg_sqs, [], steps, tuning=tuning, **_FUSED_OPTIONS)


def _radam_fused_graph(params: list[torch.Tensor], tuning: Any = None) -> Step:
    step = _radam_fused_call(params, tuning)
    step()  # compile and build the plan outside the capture
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.cuda.graph(graph):
        step()
    torch.cuda.current_stream().wait_stream(stream)
    return graph.replay


IMPLEMENTATIONS: dict[str, Factory] = {
    "radam-fused": _radam(fused=True),
    "radam-fused-new-grads": _radam_fused_new_grads,
    "radam-fused-call": _radam_fused_call,
    "radam-fused-graph": _radam_fused_graph,
    "radam-foreach": _radam(foreach=True),
    "radam-forloop": _radam(foreach=False),
    "radam-default": _radam(),
    "torch-radam-foreach": _torch_radam(foreach=True),
    "torch-radam-forloop": _torch_radam(foreach=False),
    "torch-radam-default": _torch_radam(),
    "torch-radam-compiled": _torch_radam_compiled,
    "torch-adam-fused": _torch_adam_fused,
}


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

    return {"median_ms": statistics.median(times), "p10_ms": quantile(0.1), "p90_ms": quantile(0.9),
            "samples": len(times)}


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
    case: str, impls: list[str], device: torch.device, repeats: int, warmup: int, seed: int = 0,
    tuning: Any = None, steps_per_turn: int = 1, values: bool = True,
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
    device: str = "cpu", cases: list[str] | None = None, impls: list[str] | None = None, repeats: int = 50,
    warmup: int = 8, threads: int | None = None, command: str | None = None, copy_mib: int | None = None,
    tuning: Any = None, host_only: bool = False,
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
        "settings": {"repeats": repeats, "warmup": warmup, "lr": LR, "copy_mib": copy_mib,
                     "steps_per_turn": HOST_ONLY_STEPS_PER_TURN if host_only else 1,
                     "fused_block_size": tuning.block_size,
                     "fused_programs_per_sm": tuning.programs_per_sm,
                     "fused_num_warps": tuning.num_warps,
                     "fused_kernel": "none: the launch is a call that does nothing" if host_only else "triton",
                     "garbage_collector": "off while timing" if host_only else "on",
                     "timer": "cuda events" if kind == "cuda"
                     else "time.perf_counter", "statistic": "median"},
        "copy_bandwidth_gb_s": bandwidth,
        "cases": {},
    }
    if kind == "cpu" and hasattr(os, "getloadavg"):  # other processes on the same cores slow every timing
        result["device"]["load_average_before"] = round(os.getloadavg()[0], 2)
    for case in cases:
        chosen = [name for name in impls if explicit or (case, name) not in SKIP_BY_DEFAULT]
        with _interpreter() if host_only else contextlib.nullcontext():
            entry = run_case(case, chosen, torch_device, repeats, warmup, tuning=tuning,
                             steps_per_turn=HOST_ONLY_STEPS_PER_TURN if host_only else 1, values=not host_only)
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


def format_table(result: dict[str, Any]) -> str:
    if result.get("mode") == "host-only":
        return _format_host_only(result)
    lines = [f"{result['device']['name']} ({result['device']['type']}), copy bandwidth "
             f"{result['copy_bandwidth_gb_s']:.0f} GB/s, torch {result['versions']['torch']}"]
    for case, entry in result["cases"].items():
        lines.append(f"\n{case}: {entry['n_params']:,} parameters in {entry['n_tensors']} tensors, "
                     f"floor {entry['floor_ms']:.3f} ms")
        for name, r in entry["results"].items():
            if "median_ms" in r:
                lines.append(f"  {name:22s} {r['median_ms']:10.3f} ms  (p10 {r['p10_ms']:.3f}, p90 {r['p90_ms']:.3f},"
                             f" host {r['host_median_ms']:.3f})  {r['median_ms'] / entry['floor_ms']:7.2f} x floor")
            else:
                lines.append(f"  {name:22s} skipped: {r['error']}")
        for name, ratio in entry["ratios"].items():
            lines.append(f"  ratio {name}: {ratio:.3f} (of medians), {entry['paired_ratios'][name]:.3f} "
                         "(median of per-round ratios)")
    return "\n".join(lines)


def _format_host_only(result: dict[str, Any]) -> str:
    lines = [f"Host time of a fused step (kernel launch not made) on {result['device']['name']}, "
             f"torch {result['versions']['torch']}, {result['settings']['repeats']} rounds"]
    for case, entry in result["cases"].items():
        lines.append(f"\n{case}: {entry['n_tensors']} tensors")
        for name, r in entry["results"].items():
            if "median_ms" in r:
                lines.append(f"  {name:22s} {r['host_median_ms']:9.4f} ms  (p10 {r['p10_ms']:.4f}, p90 {r['p90_ms']:.4f})")
            else:
                lines.append(f"  {name:22s} skipped: {r['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m radam.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda where available, else cpu")
    parser.add_argument("--host-only", action="store_true",
                        help="time the fused step's host work on the CPU, its kernel launch replaced by a no-op")
    parser.add_argument("--cases", help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--impls", help=f"comma-separated, from {', '.join(IMPLEMENTATIONS)}")
    parser.add_argument("--repeats", type=positive_int,
                        help=f"rounds (default 50; 20 of {HOST_ONLY_STEPS_PER_TURN} steps each with --host-only)")
    parser.add_argument("--warmup", type=non_negative_int, default=8)
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--copy-mib", type=positive_int, help="size of the bandwidth copy (default 1024 on GPU, 256 on CPU)")
    parser.add_argument("--fused-block-size", type=positive_int, help="elements per block of the fused kernel (a power of 2)")
    parser.add_argument("--fused-programs-per-sm", type=positive_int, help="programs per multiprocessor of the fused kernel")
    parser.add_argument("--fused-num-warps", type=positive_int, help="warps per program of the fused kernel")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--out", type=Path, help="JSON file to write")
    output.add_argument("--out-dir", type=Path, help="folder for the JSON file (named after the device)")
    args = parser.parse_args(argv)
    if args.host_only and args.device == "cuda":
        parser.error("--host-only runs on the CPU; leave out --device cuda")
    device = "cpu" if args.host_only else args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    repeats = args.repeats or (20 if args.host_only else 50)
    for name in (args.cases or "").split(",") if args.cases else []:
        if name not in CASES:
            parser.error(f"unknown case {name!r}")
    impls_arg = args.impls.split(",") if args.impls else None
    for name in impls_arg or []:
        if name not in IMPLEMENTATIONS:
            parser.error(f"unknown implementation {name!r}")
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    from radam import fused

    changes = {name: value for name, value in (("block_size", args.fused_block_size),
                                               ("programs_per_sm", args.fused_programs_per_sm),
                                               ("num_warps", args.fused_num_warps)) if value}
    try:
        tuning = dataclasses.replace(fused.DEFAULT_TUNING, **changes)
    except ValueError as error:
        parser.error(f"--fused-{str(error).replace('_', '-')}")
    command = "python -m radam.bench " + " ".join(sys.argv[1:] if argv is None else argv)
    result = run(device, args.cases.split(",") if args.cases else None, impls_arg, repeats, args.warmup,
                 args.threads, command=command.strip(), copy_mib=args.copy_mib, tuning=tuning,
                 host_only=args.host_only)
    print(format_table(result))
    if args.out or args.out_dir:
        path = args.out or args.out_dir / default_filename(result)
        write_json(result, path)
        print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
