r"""From an :class:`~radam.experiments.specs.OptimizerSpec` to an optimiser and its learning-rate schedule.

The schedule of every run is a product of a warmup factor and a decay factor, both called with the number
:math:`s` of steps taken since the parameters started moving (the :mod:`radam.schedules` convention):

.. math:: \alpha_{s+1} = \alpha \; \omega^{\text{warmup}}(s) \; \omega^{\text{decay}}(s)

with decay ``"none"`` (1), ``"linear"`` (:math:`\min\bigl(1, (T - s)/(T - m T)\bigr)`: constant until the
milestone fraction :math:`m` of the :math:`T` steps, then linear to 0, the NMT recipe of the paper with its decay
starting after every warmup) or ``"step"`` (:math:`0.1^{\#\{m : s \ge m T\}}` for the milestone fractions
:math:`m`, the CIFAR recipe). Adam-2k's frozen steps
are not counted in :math:`s`: its schedule starts when its parameters first move, so that its curve lines up with
the others (the paper numbers Adam-2k's iterations from :math:`-1999`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from radam import schedules
from radam.experiments.specs import ExperimentConfig, OptimizerSpec
from radam.variants import Adam2k, AdamEps

__all__ = ["build_optimizer", "frozen_steps", "schedule_factor"]


def frozen_steps(spec: OptimizerSpec) -> int:
    """How many steps the optimiser takes before its parameters move (Adam-2k's freeze; 0 otherwise)."""
    return int(spec.options.get("freeze_steps", 0)) if spec.kind == "adam2k" else 0


def _warmup(spec: OptimizerSpec, beta2: float) -> Callable[[int], float]:
    if spec.warmup == "none":
        return lambda s: 1.0
    if spec.warmup == "linear":
        return schedules.linear_warmup(spec.warmup_steps)
    if spec.warmup == "untuned-linear":
        return schedules.untuned_linear_warmup(beta2)
    if spec.warmup == "untuned-exponential":
        return schedules.untuned_exponential_warmup(beta2)
    return schedules.radam_warmup(beta2)


def schedule_factor(spec: OptimizerSpec, config: ExperimentConfig) -> Callable[[int], float]:
    """The LambdaLR factor of optimiser step ``s + 1`` (see the module docstring), frozen steps excluded."""
    warmup = _warmup(spec, config.betas[1])
    offset = frozen_steps(spec)
    total = config.steps
    milestones = [round(m * total) for m in config.decay_milestones]
    start = milestones[0] if milestones else 0

    def factor(s: int) -> float:
        moving = max(s - offset, 0)
        if config.decay == "linear":
            decay = min(1.0, max((total - moving) / (total - start), 0.0))
        elif config.decay == "step":
            decay = 0.1 ** sum(moving >= m for m in milestones)
        else:
            decay = 1.0
        return warmup(moving) * decay

    return factor


def build_optimizer(
    spec: OptimizerSpec, params: Iterable[Tensor], lr: float, config: ExperimentConfig
) -> torch.optim.Optimizer:
    """The optimiser of ``spec`` over ``params``, with the experiment's betas and weight decay.

    ``kind`` is ``"adam"`` (``torch.optim.Adam``), ``"adam2k"`` (:class:`radam.variants.Adam2k`), ``"adam-eps"``
    (:class:`radam.variants.AdamEps`), ``"radam"`` (``radam.RAdam``) or ``"sgd"`` (``torch.optim.SGD``, where
    ``betas`` do not apply);
    ``spec.options`` adds keyword arguments such as ``eps``, ``decoupled_weight_decay``, ``degenerate``.
    """
    options = dict(spec.options)
    if spec.kind == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=config.weight_decay, **options)
    common = dict(lr=lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    if spec.kind == "adam":
        return torch.optim.Adam(params, **common, **options)
    if spec.kind == "adam2k":
        return Adam2k(params, **common, **options)
    if spec.kind == "adam-eps":
        return AdamEps(params, **common, **options)
    from radam.optimizer import RAdam

    return RAdam(params, **common, **options)
