r"""Variants of Adam that the RAdam paper uses to test its explanation of warmup.

:class:`Adam2k` is the paper's *Adam-2k* ablation (Liu et al., 2020, section 3.1; the official code is
``nmt/my_module/adam2.py`` of ``LiyuanLucasLiu/RAdam``): for the first ``freeze_steps`` steps only Adam's second
moment :math:`v_t` is updated, so that by the time the parameters first move, the adaptive learning rate
:math:`1/\sqrt{\hat v_t}` is an average over ``freeze_steps`` squared gradients and has small variance. If the paper is
right that warmup works by reducing that variance, Adam-2k needs no warmup, and it indeed trains the post-LN
Transformer that plain Adam fails on.

*Adam-eps* (the other ablation, :math:`\epsilon = 10^{-4}`) needs no class: it is ``torch.optim.Adam(..., eps=1e-4)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

__all__ = ["Adam2k"]

_MOMENT_CORRECTIONS = ("total", "since_unfreeze")


class Adam2k(Optimizer):
    r"""Adam whose parameters and first moment stay frozen while the second moment warms up (the paper's Adam-2k).

    With :math:`g_t` the gradient at step :math:`t = 1, 2, \dots` (plus :math:`\lambda\theta` for coupled weight decay,
    negated when ``maximize``) and :math:`k` = ``freeze_steps``:

    .. math::

        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \qquad \text{(every step)} \\
        \theta_t &= \theta_{t-1}, \quad m_t = m_{t-1} = 0 \qquad (t \le k) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \qquad (t > k) \\
        \theta_t &= \theta_{t-1} - \frac{\alpha}{1-\beta_1^{s}}\,
            \frac{m_t}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} \qquad (t > k)

    and, for decoupled weight decay, :math:`\theta_{t-1} \leftarrow (1-\alpha\lambda)\,\theta_{t-1}` before the update,
    on steps :math:`t > k` only.

    **Which step counts the bias corrections use.** The second moment has averaged :math:`t` squared gradients, so its
    correction is :math:`1-\beta_2^t` with the total step count :math:`t` (frozen steps included): this makes
    :math:`\hat v_t` an unbiased average from the first step. For the first moment, ``first_moment_correction``
    chooses :math:`s`:

    * ``"total"`` (default): :math:`s = t`, as in the official ``Adam2`` class, which keeps one step counter for both
      moments. This is exactly ``torch.optim.Adam`` continuing from the state ``step = k``, ``exp_avg = 0``,
      ``exp_avg_sq = v_k`` (the tests check it bit for bit). After a long freeze :math:`1-\beta_1^t \approx 1`, so the
      first moment is effectively *not* bias-corrected: the first update after the freeze is
      :math:`(1-\beta_1)` times a full Adam step, and the momentum ramps up over about :math:`1/(1-\beta_1)` steps.
    * ``"since_unfreeze"``: :math:`s = t - k`, the number of gradients :math:`m_t` has actually averaged, so
      :math:`\hat m_t` is unbiased and the first update after the freeze is a full-size Adam step.

    ``freeze_steps = 0`` gives plain Adam (``torch.optim.Adam``) with either choice.

    Coupled (L2) weight decay is part of the gradient, so it enters :math:`v_t` during the freeze too (the parameters do
    not move, so the term is constant then); decoupled weight decay shrinks the parameters and is therefore frozen with
    them. Hyperparameters live in each param group (``defaults``), the step count in ``state["step"]`` as a float32
    tensor like torch's optimizers.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        freeze_steps: int = 2000,
        first_moment_correction: str = "total",
        maximize: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate lr: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value eps: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0 of betas: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1 of betas: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if isinstance(freeze_steps, bool) or not isinstance(freeze_steps, int) or freeze_steps < 0:
            raise ValueError(f"freeze_steps must be a non-negative int, got {freeze_steps!r}")
        if first_moment_correction not in _MOMENT_CORRECTIONS:
            raise ValueError(
                f"first_moment_correction must be one of {_MOMENT_CORRECTIONS}, got {first_moment_correction!r}"
            )
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            freeze_steps=freeze_steps,
            first_moment_correction=first_moment_correction,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("first_moment_correction", "total")
            group.setdefault("maximize", False)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Take one optimisation step (a second-moment-only step while frozen); return the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            freeze_steps = group["freeze_steps"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if grad.is_sparse:
                    raise RuntimeError("Adam2k does not support sparse gradients")
                if torch.is_complex(param):
                    raise RuntimeError("Adam2k does not support complex parameters")
                if group["maximize"]:
                    grad = -grad
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                step_t = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

                step_t += 1
                step = step_t.item()
                frozen = step <= freeze_steps

                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        if not frozen:
                            param.mul_(1 - lr * weight_decay)
                    else:
                        grad = grad.add(param, alpha=weight_decay)

                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if frozen:
                    continue

                exp_avg.lerp_(grad, 1 - beta1)
                if group["first_moment_correction"] == "total":
                    moment_steps = step
                else:
                    moment_steps = step - freeze_steps
                bias_correction1 = 1 - beta1**moment_steps
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
                param.addcdiv_(exp_avg, denom, value=-step_size)
        return loss
