r"""The maths of one RAdam step, as functions of tensors (no optimizer object, no state dictionary).

Three execution paths compute the same step:

* ``_single_tensor_radam`` -- the readable reference: one parameter at a time, each line annotated with the
  equation it implements. This is the code the book shows.
* ``_multi_tensor_radam`` -- the same step with ``torch._foreach_*`` operations over whole lists of tensors
  (grouped by device and dtype); the default on CUDA, as in ``torch.optim``.
* the fused Triton kernel in ``radam.fused`` (another module, imported only when ``fused=True``).

``radam`` chooses between them. With the default options (``degenerate="sgd"``, ``threshold=5.0``,
``rectifier="paper"``, ``amsgrad=False``) each path performs, float operation for float operation, the arithmetic
of the matching path of ``torch.optim.RAdam``, so the results agree bit for bit.

One step, for a parameter :math:`\theta` with gradient :math:`g_t` (after ``maximize`` and weight decay):

.. math::

   m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
   v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad
   \hat m_t = \frac{m_t}{1-\beta_1^t}, \\
   \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
   \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \\
   \theta_t &= \begin{cases}
     \theta_{t-1} - \gamma\, r_t\, \hat m_t\, \dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}
       & \text{if } \rho_t > \tau \quad\text{(rectified adaptive step)} \\
     \theta_{t-1} - \gamma\, \hat m_t & \text{if } \rho_t \le \tau \text{ and degenerate = "sgd"} \\
     \theta_{t-1} & \text{if } \rho_t \le \tau \text{ and degenerate = "skip"}
   \end{cases}

with the threshold :math:`\tau` (5 in torch, 4 in the paper's Algorithm 2) and the rectifier

.. math::

   r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}}
   \quad\text{(paper)}, \qquad
   r_t = \sqrt{\frac{\operatorname{Var}[\psi]\,|_{\rho_\infty}}{\operatorname{Var}[\psi]\,|_{\rho_t}}}
   \quad\text{(exact)}.

Note where :math:`\epsilon` sits: it is added to :math:`\sqrt{v_t}` *before* the bias correction
:math:`\sqrt{1-\beta_2^t}` is applied (torch and the official code), which equals adding
:math:`\epsilon\sqrt{1-\beta_2^t}` to the bias-corrected :math:`\sqrt{\hat v_t}`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, cast

import torch
from torch.optim.optimizer import (
    Optimizer,
    _default_to_fused_or_foreach,
    _get_capturable_supported_devices,
    _get_value,
    _to_scalar,
    _view_as_real,
)

from radam import theory

__all__ = ["radam", "DEGENERATE_MODES", "RECTIFIERS", "check_variant_options"]

#: Allowed values of the ``degenerate`` option: what happens while :math:`\rho_t` is at or below the threshold.
DEGENERATE_MODES = ("sgd", "skip")
#: Allowed values of the ``rectifier`` option: which formula gives :math:`r_t`.
RECTIFIERS = ("paper", "exact")


def check_variant_options(degenerate: Any, threshold: Any, rectifier: Any, amsgrad: Any) -> None:
    """Raise ``ValueError`` naming the option and its allowed values if a variant option is invalid.

    ``degenerate`` must be one of ``DEGENERATE_MODES``, ``rectifier`` one of ``RECTIFIERS``, ``amsgrad`` a
    bool, and ``threshold`` a real number: at least 4 for the paper's rectifier (its formula is real only for
    :math:`\\rho_t > 4`) and above 2 for the exact one (the exact variance is finite only for :math:`\\rho > 2`).
    """
    if not isinstance(degenerate, str) or degenerate not in DEGENERATE_MODES:
        raise ValueError(f"Invalid degenerate option: {degenerate!r}; allowed values are {DEGENERATE_MODES}")
    if not isinstance(rectifier, str) or rectifier not in RECTIFIERS:
        raise ValueError(f"Invalid rectifier option: {rectifier!r}; allowed values are {RECTIFIERS}")
    if not isinstance(amsgrad, bool):
        raise ValueError(f"Invalid amsgrad option: {amsgrad!r}; allowed values are (False, True)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise ValueError(f"Invalid threshold option: {threshold!r}; it must be a real number")
    if rectifier == "paper" and not threshold >= 4.0:
        raise ValueError(
            f"Invalid threshold option: {threshold} with rectifier='paper'; it must be >= 4 "
            "(the paper's rectifier is real only for rho_t > 4)"
        )
    if rectifier == "exact" and not threshold > 2.0:
        raise ValueError(
            f"Invalid threshold option: {threshold} with rectifier='exact'; it must be > 2 "
            "(the exact variance of psi is finite only for rho > 2)"
        )


# ---------------------------------------------------------------------------------------------------------------
# The exact rectifier as torch operations (for the capturable paths: no host sync, float64 throughout)
# ---------------------------------------------------------------------------------------------------------------


# The coefficients of radam.theory's asymptotic series for log q, as Python floats (traceable by torch.compile)
_LOG_Q_COEFFS = tuple(float(c) for c in theory._LOG_GAMMA_RATIO_COEFFS)
_LOG_Q_ASYMPTOTIC_FROM = float(theory._ASYMPTOTIC_FROM)


def _log_q_tensor(rho: torch.Tensor) -> torch.Tensor:
    """Torch twin of ``radam.theory._log_q``: log of (rho/2 - 1) Gamma((rho-1)/2)^2 / Gamma(rho/2)^2."""
    x = rho / 2.0
    direct = torch.log(torch.clamp(x - 1.0, min=1e-300)) + 2.0 * (
        torch.lgamma(torch.clamp(x - 0.5, min=1e-300)) - torch.lgamma(x)
    )
    inv_x = 1.0 / torch.clamp(x, min=_LOG_Q_ASYMPTOTIC_FROM)
    series = torch.zeros_like(inv_x)
    for coeff in reversed(_LOG_Q_COEFFS):  # Horner: sum_n c_n inv_x**n
        series = (series + coeff) * inv_x
    asymptotic = torch.log1p(-inv_x) + 2.0 * series
    return torch.where(x >= _LOG_Q_ASYMPTOTIC_FROM, asymptotic, direct)


def _exact_rect_tensor(step: torch.Tensor, beta2: float, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(r_t, adaptive) for the exact rectifier, from a step tensor, in float64 with torch operations only.

    :math:`r_t = \sqrt{\operatorname{Var}[\psi]|_{\rho_\infty} / \operatorname{Var}[\psi]|_{\rho_t}}` where
    :math:`\rho_t > \tau`, else 0, with ``adaptive`` the boolean tensor :math:`\rho_t > \tau`. The constant
    :math:`\operatorname{Var}[\psi]|_{\rho_\infty}` is computed with the same torch operations. Everything stays
    on the step's device (no ``.item()``, no numpy), so this works under CUDA graphs and
    ``torch.compile(fullgraph=True)``. Matches ``radam.theory.r_t_exact`` to about 1e-12.
    """
    t = step.to(torch.float64)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    if not rho_inf > threshold:  # rho_t < rho_inf: never adaptive (this also covers beta2 = 0)
        zero = torch.zeros_like(t)
        return zero, zero > 0.0
    log_beta2 = math.log(beta2)
    # rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t), with beta2^t = exp(t log beta2) and 1 - beta2^t via expm1
    rho = rho_inf - 2.0 * t * torch.exp(t * log_beta2) / -torch.expm1(t * log_beta2)
    adaptive = rho > threshold
    safe_rho = torch.where(adaptive, rho, rho_inf)  # keep the unused branch finite (no nan in gradients)
    var_inf = _variance_psi_tensor(torch.full_like(t, rho_inf))
    return torch.where(adaptive, torch.sqrt(var_inf / _variance_psi_tensor(safe_rho)), 0.0), adaptive


def _variance_psi_tensor(rho: torch.Tensor) -> torch.Tensor:
    r"""Torch twin of ``radam.theory.variance_psi_exact`` (sigma = 1): :math:`\frac{\rho}{\rho-2}(1-q)`."""
    return rho / (rho - 2.0) * -torch.expm1(_log_q_tensor(rho))


@functools.lru_cache(maxsize=256)  # tensors of a group share their step: one theory call per (step, beta2, threshold)
def _exact_rect_float(step: float, beta2: float, threshold: float) -> float:
    """The exact rectifier for a Python float step (the non-capturable paths): ``radam.theory.r_t_exact``."""
    return float(theory.r_t_exact(step, beta2, threshold))


def _check_capturable_devices(params: list[torch.Tensor], state_steps: list[torch.Tensor], xla: bool) -> None:
    """With ``capturable=True`` every parameter and its step must sit on the same device of a capturable kind.

    Unlike ``torch.optim.RAdam`` this also accepts the CPU: the capturable arithmetic (no host reads, ``torch.where``
    in place of Python branches) is correct on any device, and on the CPU it lets ``torch.compile`` and the tests
    exercise it.
    """
    supported = _get_capturable_supported_devices(supports_xla=xla) + ["cpu"]
    for p, step in zip(params, state_steps):
        if not (p.device.type == step.device.type and p.device.type in supported):
            raise AssertionError(
                f"If capturable=True, params and state_steps must be on supported devices: {supported}."
            )


# ---------------------------------------------------------------------------------------------------------------
# Path 1: one tensor at a time (the reference the book shows)
# ---------------------------------------------------------------------------------------------------------------


def _single_tensor_radam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    beta1: float,
    beta2: float,
    lr: float | torch.Tensor,
    weight_decay: float,
    eps: float,
    decoupled_weight_decay: bool,
    degenerate: str,
    threshold: float,
    rectifier: str,
    amsgrad: bool,
    differentiable: bool,
    maximize: bool,
    capturable: bool,
    has_complex: bool,
) -> None:
    r"""One RAdam step, one parameter at a time: the reference implementation (see the module docstring).

    Updates ``params``, ``exp_avgs``, ``exp_avg_sqs``, ``max_exp_avg_sqs`` (only read when ``amsgrad``) and
    ``state_steps`` in place; never modifies ``grads``.
    """
    if not torch.jit.is_scripting():
        lr = _to_scalar(lr)
    if capturable and not torch.compiler.is_compiling():
        _check_capturable_devices(params, state_steps, xla=True)

    for i, param in enumerate(params):
        # g_t: the gradient, negated for maximisation (a new tensor: .grad itself is never modified)
        grad = grads[i] if not maximize else -grads[i]
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        max_exp_avg_sq = max_exp_avg_sqs[i] if amsgrad else None
        step_t = state_steps[i]

        # A complex number is a pair of reals with their own moments: g^2 is taken part by part.
        if torch.is_complex(param):
            param = torch.view_as_real(param)
            grad = torch.view_as_real(grad)
            exp_avg = torch.view_as_real(exp_avg)
            exp_avg_sq = torch.view_as_real(exp_avg_sq)
            if max_exp_avg_sq is not None:
                max_exp_avg_sq = torch.view_as_real(max_exp_avg_sq)

        # t <- t + 1 (a tensor; read back to the host only when not capturable)
        step_t += 1
        step = step_t if capturable else _get_value(step_t)

        # Bias corrections 1 - beta1^t and 1 - beta2^t
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        # rho_inf = 2 / (1 - beta2) - 1: the longest SMA an EMA with rate beta2 can stand for
        rho_inf = 2 / (1 - beta2) - 1
        # rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t): the SMA length that Adam's v_t stands for after t steps
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        # r_t is computed only where rho_t > threshold (adaptive step); below it the step "degenerates"
        if rectifier == "exact" and capturable:
            exact_rect, adaptive = _exact_rect_tensor(cast(torch.Tensor, step), beta2, threshold)
        else:
            adaptive = rho_t > threshold

        # Weight decay: decoupled theta <- theta (1 - lr lambda), or L2 g <- g + lambda theta.
        # With degenerate="skip" a skipped step leaves theta alone, decoupled decay included (the official code);
        # L2 decay still enters g and hence the moments.
        if weight_decay != 0:
            if decoupled_weight_decay:
                if degenerate == "sgd":
                    param.mul_(1 - lr * weight_decay)
                elif capturable:
                    param.mul_(1 - lr * weight_decay * cast(torch.Tensor, adaptive).to(param.dtype))
                elif adaptive:
                    param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)

        # m_t = beta1 m_{t-1} + (1 - beta1) g_t, written as a lerp from m_{t-1} towards g_t
        exp_avg.lerp_(grad, 1 - beta1)
        # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # AMSGrad: vmax_t = max(vmax_{t-1}, v_t), used in place of v_t in the adaptive denominator
        second_moment = exp_avg_sq
        if max_exp_avg_sq is not None:
            if differentiable:  # maximum() saves its inputs for backward: give it a copy that copy_ won't modify
                max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq.clone(), exp_avg_sq))
            else:
                torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            second_moment = max_exp_avg_sq

        # m_hat_t = m_t / (1 - beta1^t)
        bias_corrected_exp_avg = exp_avg / bias_correction1

        def _compute_rect() -> Any:
            if rectifier == "exact":
                return exact_rect if capturable else _exact_rect_float(step, beta2, threshold)
            rho = rho_t
            if capturable:  # keep the unused branch of torch.where finite; the adaptive values are unchanged
                rho = torch.where(adaptive, rho_t, rho_inf)
            # r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            return ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5

        def _compute_adaptive_lr() -> torch.Tensor:
            # l_t = sqrt(1 - beta2^t) / (sqrt(v_t) + eps): eps is added before the bias correction
            exp_avg_sq_sqrt = second_moment.sqrt()
            if differentiable:
                exp_avg_sq_sqrt = exp_avg_sq_sqrt.add(eps)
            else:
                exp_avg_sq_sqrt = exp_avg_sq_sqrt.add_(eps)
            return (bias_correction2**0.5) / exp_avg_sq_sqrt

        if capturable:
            # theta <- theta - lr m_hat_t * (r_t l_t if adaptive else 1 (sgd) or 0 (skip)), without a Python branch
            fallback = 1.0 if degenerate == "sgd" else 0.0
            update = torch.where(adaptive, _compute_rect() * _compute_adaptive_lr(), fallback)
            param.add_(bias_corrected_exp_avg * lr * update, alpha=-1.0)
        elif adaptive:
            # rectified adaptive step: theta <- theta - lr m_hat_t l_t r_t
            param.add_(bias_corrected_exp_avg * lr * _compute_adaptive_lr() * _compute_rect(), alpha=-1.0)
        elif degenerate == "sgd":
            # degenerate step: SGD with bias-corrected momentum, theta <- theta - lr m_hat_t (no v_t, no eps)
            param.add_(bias_corrected_exp_avg * lr, alpha=-1.0)
        # degenerate == "skip": no parameter change at all


# ---------------------------------------------------------------------------------------------------------------
# Path 2: foreach over lists of tensors
# ---------------------------------------------------------------------------------------------------------------


def _multi_tensor_radam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    beta1: float,
    beta2: float,
    lr: float | torch.Tensor,
    weight_decay: float,
    eps: float,
    decoupled_weight_decay: bool,
    degenerate: str,
    threshold: float,
    rectifier: str,
    amsgrad: bool,
    differentiable: bool,
    maximize: bool,
    capturable: bool,
    has_complex: bool,
) -> None:
    r"""One RAdam step with ``torch._foreach_*`` operations, per (device, dtype) group of tensors.

    Same arguments and result as ``_single_tensor_radam`` (up to rounding; bit for bit equal to
    ``torch.optim.RAdam``'s foreach path with the default options). The update is written as
    :math:`\theta \mathrel{+}= m_t \odot b` with the per-tensor buffer

    .. math:: b = \frac{1}{(\sqrt{v_t}+\epsilon) / c_1} + c_0, \qquad
              c_1 = -\frac{\gamma\, r_t \sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
              c_0 = -\frac{\gamma\,[\text{degenerate sgd step}]}{1-\beta_1^t}.

    In a degenerate step :math:`r_t = 0`, so :math:`c_1 = -0.0`, the division gives :math:`-\infty` and its
    reciprocal :math:`-0`: the adaptive part vanishes through IEEE arithmetic, which must not be "guarded".
    """
    if len(params) == 0:
        return
    if differentiable:
        raise AssertionError("_foreach ops don't support autograd")
    if capturable and not torch.compiler.is_compiling():
        _check_capturable_devices(params, state_steps, xla=False)

    lr = _to_scalar(lr)
    skip = degenerate == "skip"

    grouped_tensors = Optimizer._group_tensors_by_device_and_dtype(
        [params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps]  # type: ignore[list-item]
    )
    for (
        grouped_params_,
        grouped_grads_,
        grouped_exp_avgs_,
        grouped_exp_avg_sqs_,
        grouped_max_exp_avg_sqs_,
        grouped_state_steps_,
    ), _ in grouped_tensors.values():
        grouped_params = cast(list[torch.Tensor], grouped_params_)
        grouped_grads = cast(list[torch.Tensor], grouped_grads_)
        grouped_exp_avgs = cast(list[torch.Tensor], grouped_exp_avgs_)
        grouped_exp_avg_sqs = cast(list[torch.Tensor], grouped_exp_avg_sqs_)
        grouped_max_exp_avg_sqs = cast(list[torch.Tensor], grouped_max_exp_avg_sqs_)
        grouped_state_steps = cast(list[torch.Tensor], grouped_state_steps_)

        # t <- t + 1 (on the CPU, wrap the 1 in a tensor once to avoid foreach's slow scalar path)
        if not torch.compiler.is_compiling() and grouped_state_steps[0].is_cpu:
            torch._foreach_add_(grouped_state_steps, torch.tensor(1.0, device="cpu"), alpha=1.0)
        else:
            torch._foreach_add_(grouped_state_steps, 1)

        if has_complex:
            if amsgrad:
                _view_as_real(
                    grouped_params, grouped_grads, grouped_exp_avgs, grouped_exp_avg_sqs, grouped_max_exp_avg_sqs
                )
            else:
                _view_as_real(grouped_params, grouped_grads, grouped_exp_avgs, grouped_exp_avg_sqs)

        if maximize:
            grouped_grads = torch._foreach_neg(grouped_grads)  # type: ignore[assignment]

        rho_inf = 2 / (1 - beta2) - 1
        # rho_t per tensor, and whether the step is adaptive (rho_t > threshold)
        rho_t_list: Any
        adaptive: list[Any]
        exact_rects: list[torch.Tensor] = []
        if capturable:
            bias_correction1 = torch._foreach_pow(beta2, grouped_state_steps)
            torch._foreach_neg_(bias_correction1)
            torch._foreach_add_(bias_correction1, 1)
            bias_correction2 = torch._foreach_pow(beta2, grouped_state_steps)
            torch._foreach_mul_(bias_correction2, grouped_state_steps)
            torch._foreach_mul_(bias_correction2, 2)
            torch._foreach_div_(bias_correction2, bias_correction1)
            torch._foreach_neg_(bias_correction2)
            torch._foreach_add_(bias_correction2, rho_inf)
            rho_t_list = bias_correction2
            if rectifier == "exact":
                pairs = [_exact_rect_tensor(step, beta2, threshold) for step in grouped_state_steps]
                exact_rects = [r for r, _ in pairs]
                adaptive = [a for _, a in pairs]
            else:
                adaptive = [rho_t > threshold for rho_t in rho_t_list]
        else:
            rho_t_list = [
                rho_inf - 2 * _get_value(step) * (beta2 ** _get_value(step)) / (1 - beta2 ** _get_value(step))
                for step in grouped_state_steps
            ]
            adaptive = [rho_t > threshold for rho_t in rho_t_list]

        # Which tensors move this step: all of them with degenerate="sgd"; only the adaptive ones with "skip"
        # (known on the host unless capturable; the capturable path multiplies by 0 instead).
        moving = list(range(len(grouped_params)))
        if skip and not capturable:
            moving = [i for i in moving if adaptive[i]]

        if weight_decay != 0:
            if decoupled_weight_decay:
                if skip and capturable:
                    factors = [1 - lr * weight_decay * a.to(p.dtype) for a, p in zip(adaptive, grouped_params)]
                    torch._foreach_mul_(grouped_params, factors)
                elif len(moving) == len(grouped_params):
                    torch._foreach_mul_(grouped_params, 1 - lr * weight_decay)
                elif moving:
                    torch._foreach_mul_([grouped_params[i] for i in moving], 1 - lr * weight_decay)
            else:
                # Reuse the intermediate memory (grouped_grads) already allocated for maximize
                if maximize:
                    torch._foreach_add_(grouped_grads, grouped_params, alpha=weight_decay)
                else:
                    grouped_grads = torch._foreach_add(  # type: ignore[assignment]
                        grouped_grads, grouped_params, alpha=weight_decay
                    )

        # m_t (lerp) and v_t
        torch._foreach_lerp_(grouped_exp_avgs, grouped_grads, 1 - beta1)
        torch._foreach_mul_(grouped_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(grouped_exp_avg_sqs, grouped_grads, grouped_grads, 1 - beta2)
        del grouped_grads  # free the intermediate early (peak memory)
        second_moments = grouped_exp_avg_sqs
        if amsgrad:
            torch._foreach_maximum_(grouped_max_exp_avg_sqs, grouped_exp_avg_sqs)
            second_moments = grouped_max_exp_avg_sqs

        unrect_step_size: Any
        if capturable:
            if rectifier == "exact":
                rect = exact_rects
            else:
                num = torch._foreach_sub(rho_t_list, 4)
                sub2 = torch._foreach_sub(rho_t_list, 2)
                torch._foreach_mul_(num, sub2)
                del sub2
                torch._foreach_mul_(num, rho_inf)
                rho_inf_factor = (rho_inf - 4) * (rho_inf - 2)
                denom = torch._foreach_mul(rho_t_list, rho_inf_factor)
                torch._foreach_div_(num, denom)
                del denom
                torch._foreach_sqrt_(num)
                rect = [torch.where(a, n, 0.0) for n, a in zip(num, adaptive)]
                del num
            del rho_t_list
            fallback = 1.0 if degenerate == "sgd" else 0.0
            unrect_step_size = [torch.where(a, 0.0, fallback) for a in adaptive]
            torch._foreach_mul_(unrect_step_size, lr)

            bias_correction1 = torch._foreach_pow(beta1, grouped_state_steps)
            torch._foreach_neg_(bias_correction1)
            torch._foreach_add_(bias_correction1, 1)

            torch._foreach_div_(unrect_step_size, bias_correction1)
            torch._foreach_neg_(unrect_step_size)

            bias_correction2 = torch._foreach_pow(beta2, grouped_state_steps)
            torch._foreach_neg_(bias_correction2)
            torch._foreach_add_(bias_correction2, 1)
            torch._foreach_sqrt_(bias_correction2)
            torch._foreach_mul_(bias_correction2, lr)
            torch._foreach_mul_(bias_correction2, rect)
            del rect
            torch._foreach_neg_(bias_correction2)
            torch._foreach_div_(bias_correction2, bias_correction1)
            del bias_correction1
        else:
            # Python floats: r_t (0 when not adaptive), the 0/1 "degenerate SGD" indicator, and the two scalars
            if rectifier == "exact":
                rect = [
                    _exact_rect_float(_get_value(step), beta2, threshold) if a else 0
                    for step, a in zip(grouped_state_steps, adaptive)
                ]
            else:
                rect = [
                    ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                    if a
                    else 0
                    for rho_t, a in zip(rho_t_list, adaptive)
                ]
            unrectified = [0 if (a or skip) else 1.0 for a in adaptive]
            bias_correction1 = [1 - beta1 ** _get_value(step) for step in grouped_state_steps]
            unrect_step_size = [(lr * u / bc) * -1 for u, bc in zip(unrectified, bias_correction1)]
            bias_correction2 = [
                ((1 - beta2 ** _get_value(step)) ** 0.5) * (lr * r / bc) * -1
                for step, r, bc in zip(grouped_state_steps, rect, bias_correction1)
            ]
            if len(moving) != len(grouped_params):  # degenerate="skip": only the adaptive tensors move
                if not moving:
                    continue
                grouped_params = [grouped_params[i] for i in moving]
                grouped_exp_avgs = [grouped_exp_avgs[i] for i in moving]
                second_moments = [second_moments[i] for i in moving]
                unrect_step_size = [unrect_step_size[i] for i in moving]
                bias_correction2 = [bias_correction2[i] for i in moving]

        # buffer = sqrt(1 - beta2^t) * rect_step_size / (sqrt(v) + eps) + unrect_step_size
        buffer = torch._foreach_sqrt(second_moments)
        torch._foreach_add_(buffer, eps)
        torch._foreach_div_(buffer, bias_correction2)
        torch._foreach_reciprocal_(buffer)
        torch._foreach_add_(buffer, unrect_step_size)
        # theta <- theta + m_t * buffer
        torch._foreach_addcmul_(grouped_params, grouped_exp_avgs, buffer)


# ---------------------------------------------------------------------------------------------------------------
# Path 3: the fused kernel (another module; imported only when asked for)
# ---------------------------------------------------------------------------------------------------------------


def _load_fused() -> tuple[Callable[..., None], Callable[..., None]]:
    """Import ``radam.fused`` lazily; ``RuntimeError`` with a clear message when it cannot be used here."""
    try:
        from radam.fused import check_fused_supported, fused_radam
    except ImportError as exc:  # no Triton, no CUDA build, or the module is missing
        raise RuntimeError(
            "fused=True needs a CUDA device and Triton; the fused RAdam kernel (radam.fused) could not be "
            f"imported here ({exc}). Use foreach=True or the default implementation instead."
        ) from exc
    return check_fused_supported, fused_radam


def check_fused(params: list[torch.Tensor]) -> None:
    """Raise ``RuntimeError`` unless the fused kernel can step these parameters (CUDA device, Triton installed)."""
    check_fused_supported, _ = _load_fused()
    check_fused_supported(params)


# ---------------------------------------------------------------------------------------------------------------
# The public functional API
# ---------------------------------------------------------------------------------------------------------------


def radam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    foreach: bool | None = None,
    fused: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    lr: float | torch.Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool = False,
    degenerate: str = "sgd",
    threshold: float = 5.0,
    rectifier: str = "paper",
    amsgrad: bool = False,
    maximize: bool = False,
    has_complex: bool = False,
) -> None:
    r"""Functional RAdam: one step over lists of parameters, gradients and state tensors, updated in place.

    Implements, per parameter (see ``radam.RAdam`` for every option)

    .. math::

       \theta_t = \theta_{t-1} - \gamma\,\hat m_t \cdot
       \begin{cases} r_t \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > \tau \\
                     1 \text{ (degenerate="sgd") or } 0 \text{ (degenerate="skip")} & \rho_t \le \tau \end{cases}

    ``max_exp_avg_sqs`` is read only when ``amsgrad`` (pass an empty list otherwise); ``state_steps`` holds one
    0-d tensor per parameter, incremented here. ``foreach=None`` picks the foreach path when every tensor is on a
    device with foreach kernels (CUDA) and ``differentiable`` is off, like ``torch.optim``; ``fused=True``
    dispatches to the Triton kernel of ``radam.fused`` (``RuntimeError`` where it is unavailable).
    """
    if not all(isinstance(t, torch.Tensor) for t in state_steps):
        raise RuntimeError("API has changed, `state_steps` argument must contain a list of singleton tensors")
    check_variant_options(degenerate, threshold, rectifier, amsgrad)
    if amsgrad and len(max_exp_avg_sqs) != len(params):
        raise ValueError("amsgrad=True needs one max_exp_avg_sq tensor per parameter")

    if fused:
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        check_fused_supported, fused_radam = _load_fused()
        fused_radam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            state_steps,
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
            capturable=capturable,
        )
        return

    if foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable, use_fused=False)
    if foreach and torch.jit.is_scripting():
        raise RuntimeError("torch.jit.script not supported with foreach optimizers")
    func = _multi_tensor_radam if foreach else _single_tensor_radam

    # Like torch's _disable_dynamo_if_unsupported: under torch.compile, a non-capturable step whose step counters
    # live on a GPU runs eagerly (its host reads would break the graph anyway).
    if (
        torch.compiler.is_compiling()
        and not capturable
        and state_steps
        and state_steps[0].device.type in {"cuda", "xpu"}
    ):
        func = torch._disable_dynamo(func)

    func(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        state_steps,
        beta1=beta1,
        beta2=beta2,
        lr=lr,
        weight_decay=weight_decay,
        eps=eps,
        decoupled_weight_decay=decoupled_weight_decay,
        degenerate=degenerate,
        threshold=threshold,
        rectifier=rectifier,
        amsgrad=amsgrad,
        differentiable=differentiable,
        maximize=maximize,
        capturable=capturable,
        has_complex=has_complex,
    )
