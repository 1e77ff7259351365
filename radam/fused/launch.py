"""Launching a fused step: :func:`radam.fused.launch_plan` runs a plan's kernel with the step's scalars and
options, and :func:`radam.fused.fused_radam` is the functional fused step (a plan from
:data:`radam.fused.cache.PLAN_CACHE`, then a launch)."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from radam.fused import tuning as _tuning
from radam.fused.cache import PLAN_CACHE, keep_for_graphs
from radam.fused.checks import capturing
from radam.fused.plan import Plan
from radam.fused.tuning import Tuning
from radam.step_scalars import check_variant_options, variance_at_rho_inf

__all__ = ["check_lr", "fused_radam", "launch_plan"]


def fused_radam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    degenerate: str,
    threshold: float,
    rectifier: str,
    amsgrad: bool,
    maximize: bool,
    capturable: bool,
    block_size: int | None = None,
    max_programs: int | None = None,
    tuning: Tuning | None = None,
) -> None:
    r"""One RAdam step over lists of tensors, in one kernel launch per (device, dtype); the step counts advance.

    The arguments are those of the single-tensor path (``max_exp_avg_sqs`` is empty unless ``amsgrad``), and the
    result is the same to rounding:

    .. math:: \theta_t = \theta' - \gamma\, r_t\, \hat m_t \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon}
              \ \text{if}\ \rho_t > \text{threshold}, \quad \theta' - \gamma\,\hat m_t\ \text{(degenerate "sgd")},
              \quad \theta_{t-1}\ \text{(degenerate "skip")}.

    ``lr`` may be a float or a 1-element tensor (on the device: read by the kernel, so a captured CUDA graph sees
    its current value). The step never synchronises with the host, whatever ``capturable`` says: the step counts
    must live on the parameters' device. ``tuning`` (default :data:`radam.fused.tuning.DEFAULT_TUNING`) says how
    the step is cut into blocks and launched; ``block_size`` and ``max_programs``, when given, replace its fields of
    those names.
    """
    if not params:
        return
    check_variant_options(degenerate, threshold, rectifier, amsgrad)
    if amsgrad and len(max_exp_avg_sqs) != len(params):
        raise ValueError("fused_radam: amsgrad needs one max_exp_avg_sq per parameter")
    tuning = tuning or _tuning.DEFAULT_TUNING
    if block_size is not None or max_programs is not None:
        tuning = dataclasses.replace(
            tuning,
            block_size=tuning.block_size if block_size is None else block_size,
            max_programs=tuning.max_programs if max_programs is None else max_programs,
        )
    lists = [params, grads, exp_avgs, exp_avg_sqs, state_steps] + ([max_exp_avg_sqs] if amsgrad else [])
    plan = PLAN_CACHE.find(lists, amsgrad, tuning)
    launch_plan(
        plan,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
        degenerate=degenerate,
        threshold=threshold,
        rectifier=rectifier,
        amsgrad=amsgrad,
        maximize=maximize,
    )


def check_lr(plan: Plan, lr: float | Tensor) -> None:
    """``ValueError`` for a tensor ``lr`` of more than one element, ``RuntimeError`` for one on a device that is
    neither the CPU nor the parameters' (the kernel reads a device ``lr`` itself)."""
    if not isinstance(lr, Tensor):
        return
    if lr.numel() != 1:
        raise ValueError("fused_radam: a tensor lr must have exactly one element")
    for launch in plan.launches:
        if lr.device != launch.device and lr.device.type != "cpu":
            raise RuntimeError(f"fused_radam: lr is on {lr.device}, the parameters on {launch.device}")


def launch_plan(
    plan: Plan,
    *,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    degenerate: str,
    threshold: float,
    rectifier: str,
    amsgrad: bool,
    maximize: bool,
) -> None:
    """Run the kernel once per launch of ``plan`` (the tensors it was built for, as they are now), with these options.

    Everything that does not change between steps was worked out when the plan was built; here only the scalars
    are read, and the kernel's constant arguments looked up for the option flags.
    """
    if amsgrad != plan.amsgrad:
        raise ValueError(f"fused_radam: the plan was built for amsgrad={plan.amsgrad}, the step asks for {amsgrad}")
    lr_is_tensor = isinstance(lr, Tensor)
    if lr_is_tensor:
        check_lr(plan, lr)
    exact = rectifier == "exact"
    beta2 = float(beta2)
    threshold = float(threshold)
    scalars = (
        float(beta1),
        beta2,
        float(eps),
        float(weight_decay),
        threshold,
        variance_at_rho_inf(beta2, threshold) if exact else 1.0,
    )
    flags = (bool(maximize), weight_decay != 0, bool(decoupled_weight_decay), degenerate == "sgd", exact)
    for launch in plan.launches:
        if launch.device.type == "cuda" and not plan.captured and capturing(launch.device):
            keep_for_graphs(plan)
        if lr_is_tensor and lr.device == launch.device:
            lr_value, lr_tensor = 0.0, lr  # read by the kernel at each launch (and at each replay of a CUDA graph)
        else:
            lr_value, lr_tensor = float(lr), launch.counter  # a CPU tensor: reading it does not sync with the GPU
        key = (*flags, lr_tensor is not launch.counter, launch.aligned)
        constants = launch.calls.get(key)
        if constants is None:
            maximize_, weight_decay_, decoupled, sgd, exact_, lr_tensor_, aligned = key
            constants = launch.calls[key] = dict(
                launch.constants,
                MAXIMIZE=maximize_,
                WEIGHT_DECAY=weight_decay_,
                DECOUPLED=decoupled,
                DEGENERATE_SGD=sgd,
                EXACT=exact_,
                LR_IS_TENSOR=lr_tensor_,
                ALIGNED=aligned,
            )
        launch.kernel[launch.grid](
            launch.plan,
            launch.n_tensors,
            launch.n_blocks,
            launch.counter,
            launch.series,
            lr_value,
            lr_tensor,
            *scalars,
            **constants,
        )
