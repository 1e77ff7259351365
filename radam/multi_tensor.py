r"""One RAdam step over lists of tensors with ``torch._foreach_*`` operations: the default path on CUDA, as in
``torch.optim``. The same step as :func:`radam.single_tensor.single_tensor_radam`, bit for bit equal to
``torch.optim.RAdam``'s foreach path with the default options."""

from __future__ import annotations

from typing import Any

import torch

from radam._torch_compat import _get_value, _group_tensors_by_device_and_dtype, _to_scalar, _view_as_real
from radam.step_scalars import check_capturable_devices, device_scalars, host_scalars

__all__ = ["multi_tensor_radam"]


def multi_tensor_radam(
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

    Same arguments and result as ``single_tensor_radam`` (up to rounding; bit for bit equal to
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
        check_capturable_devices(params, state_steps, xla=False)

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
        # vectors computed on the device for the whole group at once (see radam.step_scalars.device_scalars)
        if capturable:
            scalars = device_scalars(
                torch.stack(grouped_state_steps), beta1, beta2, threshold, rectifier, torch.float64
            )
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
            rect_step_size = [(s.bias_correction2**0.5) * (lr * s.rect / s.bias_correction1) * -1 for s in step_scalars]
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
