r"""Variants of Adam that the RAdam paper uses to test its explanation of warmup.

:class:`Adam2k` is the paper's *Adam-2k* ablation (Liu et al., 2020, section 3.1; the official code is
``nmt/my_module/adam2.py`` of ``LiyuanLucasLiu/RAdam``): for the first ``freeze_steps`` steps only Adam's second
moment :math:`v_t` is updated, so that by the time the parameters first move, the adaptive learning rate
:math:`1/\sqrt{\hat v_t}` is an average over ``freeze_steps`` squared gradients and has small variance. If the paper is
right that warmup works by reducing that variance, Adam-2k needs no warmup, and it indeed trains the post-LN
Transformer that plain Adam fails on.

*Adam-eps*, the other ablation, raises :math:`\epsilon` from :math:`10^{-8}` to :math:`10^{-4}`. Where the
:math:`\epsilon` goes matters in the first steps: the paper ran fairseq's Adam, which, like the official RAdam
code, adds :math:`\epsilon` to :math:`\sqrt{v_t}` *before* the bias correction, and ``torch.optim.Adam`` adds it
after. :class:`AdamEps` is Adam with the paper's placement.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.adam import adam as functional_adam

from radam._torch_compat import _get_scalar_dtype

__all__ = ["Adam2k", "AdamEps"]

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
            for param in group["params"]:
                if param.grad is not None and param.grad.is_sparse:
                    raise RuntimeError("Adam2k does not support sparse gradients")
                if param.grad is not None and torch.is_complex(param):
                    raise RuntimeError("Adam2k does not support complex parameters")
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        """One step of a param group, as multi-tensor operations over the parameters that share a step count."""
        beta1, beta2 = group["betas"]
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        freeze_steps = group["freeze_steps"]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        for param in params:
            state = self.state[param]
            if len(state) == 0:
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        grads = [p.grad for p in params]
        if group["maximize"]:
            grads = torch._foreach_neg(grads)

        torch._foreach_add_(steps, 1.0)
        # weight decay: L2 is part of g_t (so of v_t, frozen steps included); decoupled decay moves with the params
        if weight_decay != 0 and not group["decoupled_weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2, every step
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)

        # the rest only for the parameters past the freeze, in sets that share a step count t (one host read)
        by_step: dict[float, list[int]] = {}
        for index, step in enumerate(torch.stack(steps).tolist()):
            if step > freeze_steps:
                by_step.setdefault(step, []).append(index)
        for step, members in by_step.items():
            moving = [params[i] for i in members]
            if weight_decay != 0 and group["decoupled_weight_decay"]:
                torch._foreach_mul_(moving, 1 - lr * weight_decay)
            moving_exp_avgs = [exp_avgs[i] for i in members]
            # m_t = beta1 m_{t-1} + (1 - beta1) g_t
            torch._foreach_lerp_(moving_exp_avgs, [grads[i] for i in members], 1 - beta1)
            moment_steps = step if group["first_moment_correction"] == "total" else step - freeze_steps
            bias_correction1 = 1 - beta1**moment_steps
            bias_correction2 = 1 - beta2**step
            # theta_t = theta_{t-1} - lr / (1 - beta1^s) m_t / (sqrt(v_t / (1 - beta2^t)) + eps)
            denominators = torch._foreach_sqrt([exp_avg_sqs[i] for i in members])
            torch._foreach_div_(denominators, bias_correction2**0.5)
            torch._foreach_add_(denominators, eps)
            torch._foreach_addcdiv_(moving, moving_exp_avgs, denominators, value=-(lr / bias_correction1))


class AdamEps(torch.optim.Adam):
    r"""Adam with :math:`\epsilon` added to :math:`\sqrt{v_t}` before the bias correction (the paper's Adam-eps).

    fairseq's Adam, with which the paper ran its Adam-eps ablation, and the official RAdam code take the step

    .. math::

        \theta_t = \theta_{t-1} - \alpha\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m_t}{\sqrt{v_t} + \epsilon}
        = \theta_{t-1} - \frac{\alpha}{1-\beta_1^t}\,\frac{m_t}{\sqrt{\hat v_t} + \epsilon_t},
        \qquad \epsilon_t = \frac{\epsilon}{\sqrt{1-\beta_2^t}},

    where ``torch.optim.Adam`` has :math:`\epsilon` in place of :math:`\epsilon_t`. The two agree once
    :math:`\beta_2^t \approx 0`, but in the first steps, the ones the ablation is about, the paper's :math:`\epsilon`
    is larger: with :math:`\beta_2 = 0.98` it is :math:`7.1\,\epsilon` at :math:`t = 1` and :math:`2.3\,\epsilon` at
    :math:`t = 10`. The class is ``torch.optim.Adam`` run with :math:`\epsilon_t` in each step (the right-hand form
    above), so every other option and the state dict are torch's; the default :math:`\epsilon` is the ablation's
    :math:`10^{-4}`. All parameters of a group must have taken the same number of steps, and ``capturable`` (a step
    count on the device) is not supported, because :math:`\epsilon_t` is computed on the host.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-4,
        **options: Any,
    ) -> None:
        if options.get("capturable"):
            raise ValueError("AdamEps computes its epsilon on the host and does not support capturable=True")
        super().__init__(params, lr=lr, betas=betas, eps=eps, **options)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        r"""One Adam step with :math:`\epsilon_t = \epsilon/\sqrt{1-\beta_2^t}` in every group; return the closure's
        loss. Every group is checked before any parameter moves."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if any(p.grad is not None and p.grad.is_sparse for p in group["params"]):
                raise RuntimeError("AdamEps does not support sparse gradients")
        steps = [self._next_step(index, group) for index, group in enumerate(self.param_groups)]
        for group, t in zip(self.param_groups, steps):
            lists, has_complex = self._collect(group)
            beta1, beta2 = group["betas"]
            # torch.optim.Adam's functional step (public: torch.optim.adam.adam), with epsilon_t for epsilon
            functional_adam(
                *lists,
                amsgrad=group["amsgrad"],
                has_complex=has_complex,
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=group["eps"] / math.sqrt(1 - beta2**t),
                maximize=group["maximize"],
                foreach=group["foreach"],
                capturable=False,
                differentiable=group["differentiable"],
                fused=group["fused"],
                grad_scale=getattr(self, "grad_scale", None),
                found_inf=getattr(self, "found_inf", None),
                decoupled_weight_decay=group["decoupled_weight_decay"],
            )
        return loss

    def _collect(self, group: dict[str, Any]) -> tuple[list[list[torch.Tensor]], bool]:
        """The group's parameters with a gradient, their gradients, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``
        (amsgrad) and ``step``, creating the state of a first step as ``torch.optim.Adam`` does; and whether any
        parameter is complex."""
        lists: list[list[torch.Tensor]] = [[] for _ in range(6)]
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = lists
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                on_device = bool(group["fused"])
                state["step"] = torch.zeros(
                    (), dtype=_get_scalar_dtype(is_fused=on_device), device=p.device if on_device else "cpu"
                )
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            steps.append(state["step"])
        return lists, any(map(torch.is_complex, params))

    def _next_step(self, index: int, group: dict[str, Any]) -> int:
        """The step number :math:`t` that this step gives the group's parameters (checked to be the same for all)."""
        counts = {
            int(self.state[p]["step"]) if "step" in self.state[p] else 0 for p in group["params"] if p.grad is not None
        }
        if len(counts) > 1:
            raise ValueError(
                f"AdamEps: the parameters of param group {index} have taken different numbers of steps "
                f"{sorted(counts)}, so no single epsilon_t fits them; put them in separate groups"
            )
        return counts.pop() + 1 if counts else 1
