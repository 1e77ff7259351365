r"""The readable reference of one RAdam step: one parameter at a time, each line the equation it implements.

This is the code the book shows (chapter 5). :func:`single_tensor_radam` is the step; the functions above it are its
pieces, one equation each. :mod:`radam.multi_tensor` computes the same step over lists of tensors, and the fused
kernel of :mod:`radam.fused` in one launch; :func:`radam.functional.radam` chooses between them. With the default
options the step performs, float operation for float operation, the arithmetic of ``torch.optim.RAdam``'s
single-tensor path, so the two agree bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch

from radam._torch_compat import _get_value, _to_scalar
from radam.step_scalars import check_capturable_devices, device_scalars, host_scalars

__all__ = [
    "adaptive_learning_rate",
    "amsgrad_max_",
    "apply_weight_decay",
    "real_views",
    "rectified_update",
    "single_tensor_radam",
    "step_factor",
]


def real_views(*tensors: torch.Tensor | None) -> tuple[Any, ...]:
    """A complex number is a pair of reals with their own moments: view each tensor as real (None stays None)."""
    return tuple(None if t is None else torch.view_as_real(t) for t in tensors)


def apply_weight_decay(
    param: torch.Tensor, grad: torch.Tensor, lr: Any, weight_decay: float, decoupled: bool, moves: Any
) -> torch.Tensor:
    r"""L2: returns :math:`g_t + \lambda\theta`. Decoupled: :math:`\theta \leftarrow \theta(1-\gamma\lambda)` in place.

    ``moves`` says whether this step changes :math:`\theta` at all: True, except with ``degenerate="skip"``, where
    it is the adaptive test (a bool tensor when capturable) and a skipped step decays nothing.
    """
    if weight_decay == 0:
        return grad
    if not decoupled:
        return grad.add(param, alpha=weight_decay)
    if isinstance(moves, torch.Tensor):  # capturable: the factor is 1 on a skipped step
        param.mul_((1 - lr * weight_decay * moves.to(torch.float64)).to(param.dtype))
    elif moves:
        param.mul_(1 - lr * weight_decay)
    return grad


def amsgrad_max_(max_exp_avg_sq: torch.Tensor, exp_avg_sq: torch.Tensor, differentiable: bool) -> torch.Tensor:
    r"""AMSGrad: :math:`v_{\max,t} = \max(v_{\max,t-1}, v_t)`, in place; returned for the denominator."""
    if differentiable:  # maximum() saves both inputs for backward: copies that no later in-place op modifies
        max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq.clone(), exp_avg_sq.clone()))
    else:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    return max_exp_avg_sq


def adaptive_learning_rate(
    second_moment: torch.Tensor, bias_correction2: Any, eps: float, differentiable: bool
) -> torch.Tensor:
    r""":math:`l_t = \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon)`, :math:`\epsilon` before the bias correction."""
    denominator = second_moment.sqrt()
    denominator = denominator.add(eps) if differentiable else denominator.add_(eps)
    return (bias_correction2**0.5) / denominator


def rectified_update(
    bias_corrected_exp_avg: torch.Tensor,
    lr: Any,
    second_moment: torch.Tensor,
    bias_correction2: float,
    eps: float,
    rect: float,
    differentiable: bool,
) -> torch.Tensor:
    r"""The rectified adaptive update :math:`\gamma\,\hat m_t\, l_t\, r_t`, multiplied left to right as torch does.

    Outside autograd each product is taken in place on temporaries this step owns (:math:`\hat m_t` and the
    denominator): the same operations on the same values as torch's out-of-place expression, so the same bits, without
    allocating four more tensors the size of the parameter. (``a / d`` for a number ``a`` is ``d.reciprocal() * a`` in
    torch, hence ``reciprocal_().mul_(a)``.)
    """
    if differentiable or _promotes(bias_corrected_exp_avg, lr):  # autograd's values, or torch's wider product
        l_t = adaptive_learning_rate(second_moment, bias_correction2, eps, differentiable)
        return bias_corrected_exp_avg * lr * l_t * rect
    adaptive_lr = second_moment.sqrt().add_(eps).reciprocal_().mul_(bias_correction2**0.5)
    return bias_corrected_exp_avg.mul_(lr).mul_(adaptive_lr).mul_(rect)


def _promotes(tensor: torch.Tensor, lr: Any) -> bool:
    """Whether ``tensor * lr`` has a wider dtype than ``tensor``: a 0-dim tensor times a 0-dim tensor ``lr`` of a
    wider dtype (torch's out-of-place product then rounds once, where an in-place one would round twice)."""
    return isinstance(lr, torch.Tensor) and torch.result_type(tensor, lr) != tensor.dtype


def step_factor(adaptive: torch.Tensor, rect: torch.Tensor, adaptive_lr: torch.Tensor, degenerate: str) -> torch.Tensor:
    r""":math:`f_t = r_t l_t` if :math:`\rho_t > \tau`, else 1 (``"sgd"``) or 0 (``"skip"``), by ``torch.where``."""
    return torch.where(adaptive, rect * adaptive_lr, 1.0 if degenerate == "sgd" else 0.0)


def single_tensor_radam(
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

    Updates ``params``, ``exp_avgs``, ``exp_avg_sqs``, ``max_exp_avg_sqs`` (used only when ``amsgrad``) and
    ``state_steps`` in place; never modifies ``grads``. With ``capturable`` the scalars of the step stay tensors on
    the device and ``torch.where`` replaces the Python branches.
    """
    if not torch.jit.is_scripting():
        lr = _to_scalar(lr)
    if capturable and not torch.compiler.is_compiling():
        check_capturable_devices(params, state_steps, xla=True)

    for i, param in enumerate(params):
        # g_t, negated for maximisation (a new tensor: .grad itself is never modified)
        grad = grads[i] if not maximize else -grads[i]
        exp_avg, exp_avg_sq, step_t = exp_avgs[i], exp_avg_sqs[i], state_steps[i]
        max_exp_avg_sq = max_exp_avg_sqs[i] if amsgrad else None
        if torch.is_complex(param):  # real and imaginary parts are two real parameters
            param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq = real_views(
                param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq
            )

        # t <- t + 1; then 1 - beta1^t, 1 - beta2^t, the test rho_t > threshold and r_t
        step_t += 1
        if capturable:
            scalars = device_scalars(step_t, beta1, beta2, threshold, rectifier, param.dtype)
        else:
            scalars = host_scalars(_get_value(step_t), beta1, beta2, threshold, rectifier)
        bias_correction1, bias_correction2, adaptive, rect = scalars

        # weight decay: L2 g_t <- g_t + lambda theta, or decoupled theta <- theta (1 - lr lambda)
        grad = apply_weight_decay(
            param, grad, lr, weight_decay, decoupled_weight_decay, moves=adaptive if degenerate == "skip" else True
        )

        # m_t = beta1 m_{t-1} + (1 - beta1) g_t (a lerp from m_{t-1} towards g_t)
        exp_avg.lerp_(grad, 1 - beta1)
        # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # AMSGrad: vmax_t = max(vmax_{t-1}, v_t) takes the place of v_t in l_t
        second_moment = exp_avg_sq
        if max_exp_avg_sq is not None:
            second_moment = amsgrad_max_(max_exp_avg_sq, exp_avg_sq, differentiable)

        # m_hat_t = m_t / (1 - beta1^t)
        bias_corrected_exp_avg = exp_avg / bias_correction1

        # theta_t = theta_{t-1} - lr m_hat_t f_t, with f_t = r_t l_t if rho_t > threshold, else 1 ("sgd") or 0 ("skip")
        if capturable:  # no Python branch on a device value: torch.where picks f_t
            adaptive_lr = adaptive_learning_rate(second_moment, bias_correction2, eps, differentiable)
            param.add_(bias_corrected_exp_avg * lr * step_factor(adaptive, rect, adaptive_lr, degenerate), alpha=-1.0)
            del adaptive_lr
        elif adaptive:  # rectified adaptive step
            update = rectified_update(
                bias_corrected_exp_avg, lr, second_moment, bias_correction2, eps, rect, differentiable
            )
            param.add_(update, alpha=-1.0)
        elif degenerate == "sgd":  # SGD with bias-corrected momentum: no v_t, no eps
            in_place = not (differentiable or _promotes(bias_corrected_exp_avg, lr))
            param.add_(bias_corrected_exp_avg.mul_(lr) if in_place else bias_corrected_exp_avg * lr, alpha=-1.0)
        # else degenerate == "skip": theta is left unchanged
