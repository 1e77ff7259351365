r"""The maths of one RAdam step, as functions of tensors (no optimizer object, no state dictionary).

Three execution paths compute the same step:

* :func:`radam.single_tensor.single_tensor_radam` -- the readable reference: one parameter at a time, each line
  annotated with the equation it implements. This is the code the book shows.
* :func:`radam.multi_tensor.multi_tensor_radam` -- the same step with ``torch._foreach_*`` operations over whole
  lists of tensors (grouped by device and dtype); the default on CUDA, as in ``torch.optim``.
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

import torch

from radam._torch_compat import _default_to_fused_or_foreach, _disable_dynamo
from radam.multi_tensor import multi_tensor_radam
from radam.single_tensor import single_tensor_radam
from radam.step_scalars import DEGENERATE_MODES, RECTIFIERS, check_variant_options

__all__ = ["radam", "DEGENERATE_MODES", "RECTIFIERS", "check_variant_options"]

# torch's names for the two paths (the dispatcher below looks them up here, at each call)
_single_tensor_radam = single_tensor_radam
_multi_tensor_radam = multi_tensor_radam


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
    _radam_checked(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        state_steps,
        decoupled_weight_decay,
        foreach,
        differentiable,
        capturable,
        has_complex,
        maximize,
        beta1=beta1,
        beta2=beta2,
        lr=lr,
        weight_decay=weight_decay,
        eps=eps,
        fused=fused,
        degenerate=degenerate,
        threshold=threshold,
        rectifier=rectifier,
        amsgrad=amsgrad,
        max_exp_avg_sqs=max_exp_avg_sqs,
    )


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
