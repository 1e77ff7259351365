r"""The maths of one RAdam step, as functions of tensors (no optimizer object, no state dictionary).

Three execution paths compute the same step:

* ``_single_tensor_radam`` -- the readable reference: one parameter at a time, each line annotated with the
  equation it implements. This is the code the book shows.
* ``_multi_tensor_radam`` -- the same step with ``torch._foreach_*`` operations over whole lists of tensors
  (grouped by device and dtype); the default on CUDA, as in ``torch.optim``.
* the fused Triton kernel in ``radam.fused`` (another module, imported only when ``fused=True``).

``radam`` chooses between them. With the default options (``degenerate="sgd"``, ``threshold=5.0``,
``rectifier="paper"``, ``amsgrad=False``, ``capturable=False``) each path performs, float operation for float
operation, the arithmetic of the matching path of ``torch.optim.RAdam``, so the results agree bit for bit.

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
:math:`\epsilon/\sqrt{1-\beta_2^t}` to the bias-corrected :math:`\sqrt{\hat v_t}`, with
:math:`\hat v_t = v_t/(1-\beta_2^t)`:

.. math::

   \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon} = \frac{1}{\sqrt{\hat v_t} + \epsilon/\sqrt{1-\beta_2^t}}.

With ``capturable=True`` the step counter stays a (float32) tensor on the device, as in torch, but the scalars of
the step (:math:`1-\beta_1^t`, :math:`1-\beta_2^t`, :math:`\rho_t`, the test :math:`\rho_t > \tau` and
:math:`r_t`) are computed from it in float64, with the same formulas as the default path, and cast to the
parameter's dtype where they are applied (see ``radam.RAdam``'s ``capturable`` for why this departs from torch).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import torch

from radam._step_scalars import (
    DEGENERATE_MODES,
    RECTIFIERS,
    check_variant_options,
    device_scalars,
    host_scalars,
)
from radam._torch_compat import (
    _default_to_fused_or_foreach,
    _disable_dynamo,
    _get_capturable_supported_devices,
    _get_value,
    _group_tensors_by_device_and_dtype,
    _to_scalar,
    _view_as_real,
)

__all__ = ["radam", "DEGENERATE_MODES", "RECTIFIERS", "check_variant_options"]

def _check_capturable_devices(params: list[torch.Tensor], state_steps: list[torch.Tensor], xla: bool) -> None:
    """With ``capturable=True`` every parameter and its step must sit on the same device of a capturable kind.

    ``xla``: whether XLA counts as capturable (the single-tensor path: yes; the foreach path: no, as in torch).
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
# The pieces of the update (one equation each)
# ---------------------------------------------------------------------------------------------------------------


def _real_views(*tensors: torch.Tensor | None) -> tuple[Any, ...]:
    """A complex number is a pair of reals with their own moments: view each tensor as real (None stays None)."""
    return tuple(None if t is None else torch.view_as_real(t) for t in tensors)


def _weight_decay(
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


def _amsgrad_max_(max_exp_avg_sq: torch.Tensor, exp_avg_sq: torch.Tensor, differentiable: bool) -> torch.Tensor:
    r"""AMSGrad: :math:`v_{\max,t} = \max(v_{\max,t-1}, v_t)`, in place; returned for the denominator."""
    if differentiable:  # maximum() saves both inputs for backward: copies that no later in-place op modifies
        max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq.clone(), exp_avg_sq.clone()))
    else:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    return max_exp_avg_sq


def _adaptive_lr(second_moment: torch.Tensor, bias_correction2: Any, eps: float, differentiable: bool) -> torch.Tensor:
    r""":math:`l_t = \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon)`, :math:`\epsilon` before the bias correction."""
    denominator = second_moment.sqrt()
    denominator = denominator.add(eps) if differentiable else denominator.add_(eps)
    return (bias_correction2**0.5) / denominator


def _rectified_update(
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
        return bias_corrected_exp_avg * lr * _adaptive_lr(second_moment, bias_correction2, eps, differentiable) * rect
    adaptive_lr = second_moment.sqrt().add_(eps).reciprocal_().mul_(bias_correction2**0.5)
    return bias_corrected_exp_avg.mul_(lr).mul_(adaptive_lr).mul_(rect)


def _promotes(tensor: torch.Tensor, lr: Any) -> bool:
    """Whether ``tensor * lr`` has a wider dtype than ``tensor``: a 0-dim tensor times a 0-dim tensor ``lr`` of a
    wider dtype (torch's out-of-place product then rounds once, where an in-place one would round twice)."""
    return isinstance(lr, torch.Tensor) and torch.result_type(tensor, lr) != tensor.dtype


def _step_factor(
    adaptive: torch.Tensor, rect: torch.Tensor, adaptive_lr: torch.Tensor, degenerate: str
) -> torch.Tensor:
    r""":math:`f_t = r_t l_t` if :math:`\rho_t > \tau`, else 1 (``"sgd"``) or 0 (``"skip"``), by ``torch.where``."""
    return torch.where(adaptive, rect * adaptive_lr, 1.0 if degenerate == "sgd" else 0.0)


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

    Updates ``params``, ``exp_avgs``, ``exp_avg_sqs``, ``max_exp_avg_sqs`` (used only when ``amsgrad``) and
    ``state_steps`` in place; never modifies ``grads``. With ``capturable`` the scalars of the step stay tensors on
    the device and ``torch.where`` replaces the Python branches.
    """
    if not torch.jit.is_scripting():
        lr = _to_scalar(lr)
    if capturable and not torch.compiler.is_compiling():
        _check_capturable_devices(params, state_steps, xla=True)

    for i, param in enumerate(params):
        # g_t, negated for maximisation (a new tensor: .grad itself is never modified)
        grad = grads[i] if not maximize else -grads[i]
        exp_avg, exp_avg_sq, step_t = exp_avgs[i], exp_avg_sqs[i], state_steps[i]
        max_exp_avg_sq = max_exp_avg_sqs[i] if amsgrad else None
        if torch.is_complex(param):  # real and imaginary parts are two real parameters
            param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq = _real_views(
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
        grad = _weight_decay(param, grad, lr, weight_decay, decoupled_weight_decay,
                             moves=adaptive if degenerate == "skip" else True)

        # m_t = beta1 m_{t-1} + (1 - beta1) g_t (a lerp from m_{t-1} towards g_t)
        exp_avg.lerp_(grad, 1 - beta1)
        # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # AMSGrad: vmax_t = max(vmax_{t-1}, v_t) takes the place of v_t in l_t
        second_moment = exp_avg_sq
        if max_exp_avg_sq is not None:
            second_moment = _amsgrad_max_(max_exp_avg_sq, exp_avg_sq, differentiable)

        # m_hat_t = m_t / (1 - beta1^t)
        bias_corrected_exp_avg = exp_avg / bias_correction1

        # theta_t = theta_{t-1} - lr m_hat_t f_t, with f_t = r_t l_t if rho_t > threshold, else 1 ("sgd") or 0 ("skip")
        if capturable:  # no Python branch on a device value: torch.where picks f_t
            adaptive_lr = _adaptive_lr(second_moment, bias_correction2, eps, differentiable)
            param.add_(bias_corrected_exp_avg * lr * _step_factor(adaptive, rect, adaptive_lr, degenerate), alpha=-1.0)
            del adaptive_lr
        elif adaptive:  # rectified adaptive step
            update = _rectified_update(bias_corrected_exp_avg, lr, second_moment, bias_correction2, eps, rect,
                                       differentiable)
            param.add_(update, alpha=-1.0)
        elif degenerate == "sgd":  # SGD with bias-corrected momentum: no v_t, no eps
            in_place = not (differentiable or _promotes(bias_corrected_exp_avg, lr))
            param.add_(bias_corrected_exp_avg.mul_(lr) if in_place else bias_corrected_exp_avg * lr, alpha=-1.0)
        # else degenerate == "skip": theta is left unchanged


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
    With ``capturable``, :math:`c_1` and :math:`c_0` are computed for the whole group as float64 vectors on the
    device and cast once to the parameters' dtype.
    """
    if len(params) == 0:
        return
    if differentiable:
        raise AssertionError("_foreach ops don't support autograd")
    if capturable and not torch.compiler.is_compiling():
        _check_capturable_devices(params, state_steps, xla=False)

    lr = _to_scalar(lr)
    skip = degenerate == "skip"

    grouped_tensors = _group_tensors_by_device_and_dtype(
        [params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps]  # type: ignore[list-item]
    )
    for (
        grouped_params,
        grouped_grads,
        grouped_exp_avgs,
        grouped_exp_avg_sqs,
        grouped_max_exp_avg_sqs,
        grouped_state_steps,
    ), _ in grouped_tensors.values():

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

        # The scalars of each tensor's step t: Python floats read back to the host, or -- capturable -- float64
        # vectors computed on the device for the whole group at once (see radam._step_scalars.device_scalars)
        if capturable:
            scalars = device_scalars(torch.stack(grouped_state_steps), beta1, beta2, threshold, rectifier,
                                      torch.float64)
            adaptive: Any = scalars.adaptive
        else:
            step_scalars = [
                host_scalars(_get_value(step), beta1, beta2, threshold, rectifier) for step in grouped_state_steps
            ]
            adaptive = [s.adaptive for s in step_scalars]

        # Which tensors move this step: all of them with degenerate="sgd"; only the adaptive ones with "skip"
        # (known on the host unless capturable; the capturable path multiplies by 0 instead).
        moving = list(range(len(grouped_params)))
        if skip and not capturable:
            moving = [i for i in moving if adaptive[i]]

        if weight_decay != 0:
            if decoupled_weight_decay:
                if skip and capturable:  # theta (1 - lr lambda) where adaptive, theta where skipped
                    factors = (1 - lr * weight_decay * adaptive.to(torch.float64)).to(grouped_params[0].dtype)
                    torch._foreach_mul_(grouped_params, list(factors.unbind()))
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

        # c_1 (rect_step_size) and c_0 (unrect_step_size) per tensor
        rect_step_size: Any
        unrect_step_size: Any
        if capturable:
            # in float64, then cast once to the parameters' dtype; c_1 = -0.0 where not adaptive (r_t = 0)
            fallback = 1.0 if degenerate == "sgd" else 0.0
            c1 = -(scalars.bias_correction2.sqrt() * lr * scalars.rect) / scalars.bias_correction1
            c0 = -(lr * fallback * (~adaptive).to(torch.float64)) / scalars.bias_correction1
            rect_step_size = list(c1.to(grouped_params[0].dtype).unbind())
            unrect_step_size = list(c0.to(grouped_params[0].dtype).unbind())
        else:
            # Python floats, in torch's order: r_t is 0 when not adaptive, and the 0/1 "degenerate SGD" indicator
            unrectified = [0 if (s.adaptive or skip) else 1.0 for s in step_scalars]
            unrect_step_size = [(lr * u / s.bias_correction1) * -1 for u, s in zip(unrectified, step_scalars)]
            rect_step_size = [
                (s.bias_correction2**0.5) * (lr * s.rect / s.bias_correction1) * -1 for s in step_scalars
            ]
            if len(moving) != len(grouped_params):  # degenerate="skip": only the adaptive tensors move
                if not moving:
                    continue
                grouped_params = [grouped_params[i] for i in moving]
                grouped_exp_avgs = [grouped_exp_avgs[i] for i in moving]
                second_moments = [second_moments[i] for i in moving]
                unrect_step_size = [unrect_step_size[i] for i in moving]
                rect_step_size = [rect_step_size[i] for i in moving]

        # buffer = 1 / ((sqrt(v) + eps) / c_1) + c_0 = c_1 / (sqrt(v) + eps) + c_0
        buffer = torch._foreach_sqrt(second_moments)
        torch._foreach_add_(buffer, eps)
        torch._foreach_div_(buffer, rect_step_size)
        torch._foreach_reciprocal_(buffer)
        torch._foreach_add_(buffer, unrect_step_size)
        # theta <- theta + m_t * buffer
        torch._foreach_addcmul_(grouped_params, grouped_exp_avgs, buffer)


# ---------------------------------------------------------------------------------------------------------------
# Path 3: the fused kernel (another module; imported only when asked for)
# ---------------------------------------------------------------------------------------------------------------


def load_fused() -> ModuleType:
    """Import ``radam.fused`` lazily; ``RuntimeError`` with a clear message when it cannot be used here."""
    try:
        fused = importlib.import_module("radam.fused")
    except ImportError as exc:  # no Triton, no CUDA build, or the module is missing
        raise RuntimeError(
            "fused=True needs a CUDA device and Triton; the fused RAdam kernel (radam.fused) could not be "
            f"imported here ({exc}). Use foreach=True or the default implementation instead."
        ) from exc
    return fused


def check_fused(params: list[torch.Tensor]) -> None:
    """Raise ``RuntimeError`` unless the fused kernel can step these parameters (CUDA device, Triton installed)."""
    load_fused().check_fused_supported(params)


# ---------------------------------------------------------------------------------------------------------------
# The public functional API
# ---------------------------------------------------------------------------------------------------------------


def _uses_foreach(params: list[torch.Tensor], foreach: bool | None, differentiable: bool) -> bool:
    """Whether ``radam`` takes the foreach path: ``foreach`` if given, else torch's default (CUDA, not
    differentiable)."""
    if foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable, use_fused=False)
    return bool(foreach)



def radam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    decoupled_weight_decay: bool = False,
    foreach: bool | None = None,
    differentiable: bool = False,
    capturable: bool = False,
    has_complex: bool = False,
    maximize: bool = False,
    *,
    beta1: float,
    beta2: float,
    lr: float | torch.Tensor,
    weight_decay: float,
    eps: float,
    fused: bool | None = None,
    degenerate: str = "sgd",
    threshold: float = 5.0,
    rectifier: str = "paper",
    amsgrad: bool = False,
    max_exp_avg_sqs: list[torch.Tensor] | None = None,
) -> None:
    r"""Functional RAdam: one step over lists of parameters, gradients and state tensors, updated in place.

    Implements, per parameter (see ``radam.RAdam`` for every option)

    .. math::

       \theta_t = \theta_{t-1} - \gamma\,\hat m_t \cdot
       \begin{cases} r_t \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > \tau \\
                     1 \text{ (degenerate="sgd") or } 0 \text{ (degenerate="skip")} & \rho_t \le \tau \end{cases}

    The arguments up to ``eps`` are those of ``torch.optim.radam.radam``, in its order, so a call written for torch's
    functional step runs here unchanged. ``max_exp_avg_sqs`` is needed (and updated) only when ``amsgrad``;
    ``state_steps`` holds one 0-d tensor per parameter, incremented here. ``foreach=None`` picks the foreach path
    when every tensor is on a device with foreach kernels (CUDA) and ``differentiable`` is off, like
    ``torch.optim``; ``fused=True`` dispatches to the Triton kernel of ``radam.fused`` (``RuntimeError`` where it
    is unavailable).
    """
    if not all(isinstance(t, torch.Tensor) for t in state_steps):
        raise RuntimeError("API has changed, `state_steps` argument must contain a list of singleton tensors")
    check_variant_options(degenerate, threshold, rectifier, amsgrad)
    max_exp_avg_sqs = [] if max_exp_avg_sqs is None else max_exp_avg_sqs
    if amsgrad and len(max_exp_avg_sqs) != len(params):
        raise ValueError("amsgrad=True needs one max_exp_avg_sq tensor per parameter")
    _radam_checked(params, grads, exp_avgs, exp_avg_sqs, state_steps, decoupled_weight_decay, foreach, differentiable,
                 capturable, has_complex, maximize, beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay,
                 eps=eps, fused=fused, degenerate=degenerate, threshold=threshold, rectifier=rectifier,
                 amsgrad=amsgrad, max_exp_avg_sqs=max_exp_avg_sqs)


def _radam_checked(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    decoupled_weight_decay: bool,
    foreach: bool | None,
    differentiable: bool,
    capturable: bool,
    has_complex: bool,
    maximize: bool,
    *,
    beta1: float,
    beta2: float,
    lr: float | torch.Tensor,
    weight_decay: float,
    eps: float,
    fused: bool | None,
    degenerate: str,
    threshold: float,
    rectifier: str,
    amsgrad: bool,
    max_exp_avg_sqs: list[torch.Tensor],
) -> None:
    """:func:`radam` after its option checks, which the caller has made: ``radam.RAdam`` checks every group's
    options once per step, before any group moves, and then calls this for each group."""
    if fused:
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        load_fused().fused_radam(
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

    foreach = _uses_foreach(params, foreach, differentiable)
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
        func = _disable_dynamo(func)

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
