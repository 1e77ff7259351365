"""The implementations the benchmark times: each a factory that makes one optimizer step over a parameter list."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "IMPLEMENTATIONS",
    "DEFAULT_IMPLS",
    "HOST_ONLY_IMPLS",
    "SKIP_BY_DEFAULT",
    "NO_LAUNCH",
    "LR",
    "Step",
    "Factory",
]

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
        optimizer._fused.tuning = tuning  # how fused groups cut and launch their kernel (None: the default)
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
    lr=LR,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    degenerate="sgd",
    threshold=5.0,
    rectifier="paper",
    amsgrad=False,
    maximize=False,
    capturable=True,
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

DEFAULT_IMPLS = {
    "cuda": [
        "radam-fused",
        "radam-fused-call",
        "radam-fused-graph",
        "radam-foreach",
        "radam-forloop",
        "torch-radam-foreach",
        "torch-radam-forloop",
        "torch-radam-compiled",
        "torch-adam-fused",
    ],
    "cpu": ["radam-default", "torch-radam-default", "radam-foreach", "torch-radam-foreach"],
}
HOST_ONLY_IMPLS = ["radam-fused", "radam-fused-new-grads", "radam-fused-call"]
SKIP_BY_DEFAULT = {("small", "torch-radam-compiled")}  # compiling a 2000-tensor step takes minutes
