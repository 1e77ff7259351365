r"""``radam.RAdam``: a drop-in ``torch.optim.RAdam`` with every variant the literature argues about as an option.

The class is thin, in the style of ``torch.optim``: it validates arguments, keeps every hyperparameter and flag
in the param groups (hence per group and in ``state_dict()``), creates the per-parameter state lazily, checks every
group before any group moves, and calls the functional step (``radam.functional.radam``, without repeating the checks)
once per param group. Fused groups are handed to ``radam.fused.optimizer_groups.FusedGroups``, which keeps what their
last step found.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from radam import step_scalars
from radam._counted_state import CountedState, ParamState
from radam._torch_compat import _get_scalar_dtype, _use_grad_for_differentiable, graph_capture_health_check
from radam.functional import _radam_checked, _uses_foreach
from radam.fused.group_step import FusedGroupStep
from radam.fused.optimizer_groups import LOW_PRECISION, FusedGroups, check_fused_group

__all__ = ["RAdam"]

_VARIANT_KEYS = ("degenerate", "threshold", "rectifier", "amsgrad")
_VARIANT = operator.itemgetter(*_VARIANT_KEYS)


class RAdam(Optimizer):
    r"""Rectified Adam (Liu et al., ICLR 2020); with default arguments, exactly ``torch.optim.RAdam``.

    For each parameter :math:`\theta` with gradient :math:`g_t` (negated when ``maximize``), learning rate
    :math:`\gamma`, weight decay :math:`\lambda` and threshold :math:`\tau`:

    .. math::

       \begin{aligned}
       & \textbf{if } \lambda \ne 0: \quad
         \theta \leftarrow \theta\,(1 - \gamma\lambda) \text{ (decoupled) } \quad\text{or}\quad
         g_t \leftarrow g_t + \lambda\theta \text{ (L2)} \\
       & m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2, \qquad
         \hat m_t = m_t / (1-\beta_1^t) \\
       & \rho_\infty = 2/(1-\beta_2) - 1, \qquad \rho_t = \rho_\infty - 2t\beta_2^t / (1-\beta_2^t) \\
       & \textbf{if } \rho_t > \tau: \quad
         \theta_t = \theta_{t-1} - \gamma\, r_t\, \hat m_t\, \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon},
         \qquad r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}} \\
       & \textbf{else}: \quad \theta_t = \theta_{t-1} - \gamma\,\hat m_t \text{ (degenerate="sgd")}
         \quad\text{or}\quad \theta_t = \theta_{t-1} \text{ (degenerate="skip")}
       \end{aligned}

    With ``amsgrad=True``, :math:`v_t` in the denominator is replaced by its running maximum
    :math:`\max(v_{\max,t-1}, v_t)`. With ``rectifier="exact"``, :math:`r_t` is the square root of the ratio of the
    exact variances of the adaptive learning rate,
    :math:`\operatorname{Var}[\psi]|_{\rho_\infty} / \operatorname{Var}[\psi]|_{\rho_t}` (see
    ``radam.theory.r_t_exact``), instead of the paper's first-order formula. With ``degenerate="skip"`` a skipped
    step changes nothing in :math:`\theta`, decoupled decay included; L2 decay still enters :math:`g_t` and so the
    moments, which keep accumulating.

    **Which settings reproduce which implementation.**

    ========================================  ===========================================================
    Implementation                            Options
    ========================================  ===========================================================
    ``torch.optim.RAdam``                     the defaults (``threshold=5.0``, ``degenerate="sgd"``,
                                              ``rectifier="paper"``); bit for bit, with every flag
                                              except ``capturable=True``, whose scalars are exact here
                                              and float32 there (see ``capturable`` below)
    Official code (LiyuanLucasLiu/RAdam       ``degenerate="skip"``, ``decoupled_weight_decay=True``,
    HEAD, ``degenerated_to_sgd=False``)       ``threshold=5.0``. Its test is :math:`\rho_t \ge 5` where
                                              ours (and torch's) is :math:`\rho_t > 5`. They differ
                                              only at a step where :math:`\rho_t` is exactly 5, which
                                              is degenerate here and adaptive there; that is rare but
                                              happens (:math:`\beta_2 = 0.8397685748659791` gives
                                              :math:`\rho_6 = 5.0`). Decoupled decay there is applied
                                              only on updating steps, as ``"skip"`` does here. It
                                              computes in float32
                                              copies of low-precision params, which we do not.
    Paper, Algorithm 2                        ``threshold=4.0``, ``degenerate="sgd"``; its experiments
                                              used ``decoupled_weight_decay=True``
    labml_nn ``RAdam``                        ``threshold=5.0``, ``degenerate="sgd"``
                                              (``degenerated_to_sgd=True``),
                                              ``decoupled_weight_decay=True``, optional ``amsgrad=True``.
                                              labml's test is :math:`\ge 5`, as above; and it decays
                                              weights even on skipped steps when
                                              ``degenerated_to_sgd=False``, which we do not reproduce
                                              (``"skip"`` decays nothing on a skipped step).
    ``optax.radam``                           ``threshold=5.0``, ``degenerate="sgd"``, no weight decay --
                                              but **not reproducible exactly**: optax adds
                                              :math:`\epsilon` after the bias correction
                                              (:math:`\hat m_t / (\sqrt{\hat v_t} + \epsilon)`); our
                                              step is optax's with :math:`\epsilon` replaced by
                                              :math:`\epsilon / \sqrt{1-\beta_2^t}` (larger, and
                                              changing with :math:`t`), so no constant setting of either
                                              :math:`\epsilon` reproduces the other, and the steps differ
                                              while :math:`\sqrt{v_t}` is not much larger than
                                              :math:`\epsilon`; complex numbers use :math:`|g|^2`
                                              as one second moment where we treat real and imaginary
                                              parts separately; its test is :math:`\ge` threshold.
    ========================================  ===========================================================

    Args:
        params: iterable of parameters or named_parameters to optimize, or of dicts defining
            parameter groups (every option below may be set per group).
        lr: learning rate :math:`\gamma`; a tensor must have one element
            (default: 1e-3).
        betas: :math:`(\beta_1, \beta_2)`, the decay rates of the running
            averages of the gradient and of its square (default: (0.9, 0.999)).
        eps: :math:`\epsilon`, added to :math:`\sqrt{v_t}` before the bias correction
            (default: 1e-8).
        weight_decay: :math:`\lambda` (default: 0).
        decoupled_weight_decay: decay the weights directly, :math:`\theta \leftarrow
            \theta(1-\gamma\lambda)` (AdamW style, "RAdamW"), instead of adding :math:`\lambda\theta` to the
            gradient (default: False).
        foreach: use the foreach (multi-tensor) implementation; None picks it on CUDA when not
            differentiable (default: None).
        maximize: maximise the objective instead of minimising it (default: False).
        capturable: keep the step counters on the parameters' device and compute without host
            synchronisation (``torch.where`` instead of Python branches), for CUDA graphs and
            ``torch.compile(fullgraph=True)``. Unlike torch, the CPU is accepted too. The step counter is a
            float32 tensor, as in torch, but the scalars of the step (the bias corrections, :math:`\rho_t`, the
            test :math:`\rho_t > \tau` and :math:`r_t`) are computed from it **in float64** on the device and
            cast to the parameter's dtype where they are applied, so a capturable step takes the same branch as
            the default path and agrees with it to rounding. This deliberately departs from
            ``torch.optim.RAdam(capturable=True)``, which computes them in float32, where
            :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)` cancels catastrophically: at
            :math:`\beta_2 = 0.999` its :math:`\rho_6` is 0.32% and :math:`r_6` 0.57% too small, and for
            :math:`\beta_2 \ge 0.9995` it takes the wrong branch -- an adaptive step at :math:`t = 5`
            (:math:`\beta_2 = 0.9995`), at :math:`t = 2, 4, 5` (0.9999), and from :math:`t = 1` on, with no
            warmup at all, at 0.99999 (default: False).
        differentiable: run the step under autograd, so that one can differentiate through it
            (default: False).
        fused: use the fused Triton kernel of ``radam.fused`` (CUDA only; ``RuntimeError`` at
            construction, in ``add_param_group`` and before a step where it is unavailable). Low-precision
            parameters then keep float32 moments; DTensor parameters (FSDP2) are stepped on each rank's local
            shards (default: None).
        degenerate: what happens while :math:`\rho_t \le \tau`: ``"sgd"`` takes an SGD step
            with bias-corrected momentum (torch, the paper), ``"skip"`` leaves the parameter unchanged (the
            official code since 2021) (default: ``"sgd"``).
        threshold: :math:`\tau`; the step is adaptive iff :math:`\rho_t > \tau`. 5.0 is
            torch's, 4.0 the paper's (with :math:`\beta_2 = 0.999` the first adaptive step is then step 5
            instead of 6). At least 4 for ``rectifier="paper"``, at least 2 for ``"exact"`` (default: 5.0).
        rectifier: ``"paper"`` (the first-order formula) or ``"exact"`` (from the exact
            variance of the adaptive learning rate) (default: ``"paper"``).
        amsgrad: use the running maximum of :math:`v_t` in the denominator (AMSGrad); adds
            the state entry ``max_exp_avg_sq`` (default: False).

    **State.** ``optimizer.state`` holds what ``torch.optim.RAdam``'s does (``step``, ``exp_avg``, ``exp_avg_sq``,
    and ``max_exp_avg_sq`` with amsgrad), in a ``defaultdict`` subclass of ``dict`` subclasses that count every
    change that can replace an entry, which lets a fused step skip re-checking the state of every parameter when
    nothing was replaced (see ``radam._counted_state``). ``state_dict()`` hands out each parameter's state as a
    plain dict, a shallow copy (torch's hands out the live dicts), so that a saved state dict loads with
    ``torch.load(..., weights_only=True)``; ``load_state_dict`` accepts torch's and ours.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        degenerate: str = "sgd",
        threshold: float = 5.0,
        rectifier: str = "paper",
        amsgrad: bool = False,
    ) -> None:
        # The same checks, in the same order and with the same messages, as torch.optim.RAdam
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        step_scalars.check_variant_options(degenerate, threshold, rectifier, amsgrad)
        threshold, amsgrad = float(threshold), bool(amsgrad)  # numpy scalars would stop a weights-only torch.load

        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
            "fused": fused,
            "degenerate": degenerate,
            "threshold": threshold,
            "rectifier": rectifier,
            "amsgrad": amsgrad,
        }
        self._fused = FusedGroups()  # what the fused groups' last steps found (radam.fused.optimizer_groups)
        super().__init__(params, defaults)  # checks every group with add_param_group, fused included
        self.state = CountedState.wrap(self.state)  # counts replaced entries for the fused step's cache

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group after checking its options: ``ValueError`` for a variant option, ``RuntimeError``
        for ``fused`` where it cannot run, raised before anything is added (construction adds its groups here too).
        """
        if isinstance(param_group, dict):
            options = {**self.defaults, **param_group}
            step_scalars.check_variant_options(*(options[key] for key in _VARIANT_KEYS))
            for key, python_type in (("threshold", float), ("amsgrad", bool)):
                if key in param_group:
                    param_group[key] = python_type(param_group[key])
            if options["fused"]:
                params = param_group.get("params", [])
                if not isinstance(params, (torch.Tensor, set)):  # normalised as the base class does (it rejects sets)
                    params = param_group["params"] = list(params)
                check_fused_group(options, [params] if isinstance(params, torch.Tensor) else params)
        super().add_param_group(param_group)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load state (pickle, deepcopy, ``load_state_dict``): back-fill flags, make ``step`` a tensor.

        Older state dicts (``torch.optim.RAdam``'s, or ours before an option existed) get the defaults of the
        missing flags; a Python number ``step`` becomes a tensor. State whose shapes do not match the parameters
        (a state dict saved for a different parameter layout) raises ``ValueError`` and changes nothing.
        """
        _check_state_layout(state.get("state", {}))
        super().__setstate__(state)
        if not isinstance(self.state, CountedState):  # load_state_dict; a copy.copy shares the counted state
            self.state = CountedState.wrap(self.state)
        # what each fused group's last step found, forgotten (see step()); the tuning is kept by load_state_dict
        self._fused = FusedGroups(getattr(getattr(self, "_fused", None), "tuning", None))
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("capturable", False)
            fused = group.setdefault("fused", None)
            group.setdefault("degenerate", "sgd")
            group.setdefault("threshold", 5.0)
            group.setdefault("rectifier", "paper")
            group.setdefault("amsgrad", False)
            for p in group["params"]:
                p_state = self.state.get(p, [])
                if len(p_state) == 0:
                    continue
                if not torch.is_tensor(p_state["step"]):
                    step_val = float(p_state["step"])
                    p_state["step"] = (
                        torch.tensor(step_val, dtype=_get_scalar_dtype(is_fused=fused), device=p.device)
                        if group["capturable"] or fused
                        else torch.tensor(step_val, dtype=_get_scalar_dtype())
                    )
        self._fused.loaded(self.param_groups, self.state)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``torch.optim.Optimizer.load_state_dict``, except that the float32 moments of bfloat16 or float16
        parameters in fused groups load exactly: torch casts every state tensor to its parameter's dtype, which would
        round them. Load-state-dict pre-hooks run first, as in torch, and their changes are kept."""
        exact: list[tuple[torch.Tensor, str, torch.Tensor]] = []

        def remember_float32_moments(optimizer: Optimizer, loaded: dict[str, Any]) -> None:
            # registered last: sees what the user's hooks made
            exact.extend(self._fused.float32_moments(self.param_groups, loaded))

        handle = self.register_load_state_dict_pre_hook(remember_float32_moments)
        try:
            super().load_state_dict(state_dict)
        finally:
            handle.remove()
        for param, key, value in exact:
            self.state[param][key] = value.to(device=param.device, dtype=torch.float32, copy=True)

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.Optimizer.state_dict()``, with every parameter's state a plain dict (so that a saved state
        dict loads with ``torch.load(..., weights_only=True)``; see ``radam._counted_state``)."""
        state_dict = super().state_dict()
        if isinstance(state_dict, dict) and isinstance(state_dict.get("state"), dict):
            packed = state_dict["state"]
            state_dict["state"] = {key: dict(v) if isinstance(v, ParamState) else v for key, v in packed.items()}
        return state_dict

    def _init_group(
        self,
        group: dict[str, Any],
        params_with_grad: list[torch.Tensor],
        grads: list[torch.Tensor],
        exp_avgs: list[torch.Tensor],
        exp_avg_sqs: list[torch.Tensor],
        max_exp_avg_sqs: list[torch.Tensor],
        state_steps: list[torch.Tensor],
    ) -> bool:
        """Collect the parameters that have a gradient and their state, creating the state lazily."""
        has_complex = False
        fused = bool(group["fused"])
        for p in group["params"]:
            if p.grad is None:
                continue
            has_complex |= torch.is_complex(p)
            params_with_grad.append(p)
            grads.append(p.grad)  # dense: checked before the step (_validate_before_step)

            state = self.state[p]
            if len(state) == 0:
                # step: a 0-d tensor on the CPU (the param's device when capturable or fused)
                state["step"] = (
                    torch.zeros((), dtype=_get_scalar_dtype(is_fused=fused), device=p.device)
                    if group["capturable"] or fused
                    else torch.tensor(0.0, dtype=_get_scalar_dtype())
                )
                moment_dtype = torch.float32 if fused and p.dtype in LOW_PRECISION else None
                # m: exponential moving average of the gradient; v: of its square
                state["exp_avg"] = torch.zeros_like(p, dtype=moment_dtype, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, dtype=moment_dtype, memory_format=torch.preserve_format)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                # running maximum of v (a state saved without amsgrad starts from the current v)
                state["max_exp_avg_sq"] = state["exp_avg_sq"].clone(memory_format=torch.preserve_format)

            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            state_steps.append(state["step"])
        return has_complex

    def _validate_before_step(self, current: dict[int, FusedGroupStep] | None = None) -> None:
        """Every check that can fail, for every group, before any parameter is touched.

        Options may have changed since ``add_param_group`` (a group edited in place, ``load_state_dict``), so the
        group checks run again: variant options, tensor lr, ``fused`` (its availability included), ``foreach`` with
        ``differentiable``, sparse gradients, and the capturable device check of the path the group will take.
        The groups in ``current`` are fused groups whose cached step was confirmed by ``FusedGroupStep.refresh``:
        their per-parameter checks are not repeated, nor the check of variant options that have the values checked
        before. (A fused group's plan is checked, tensor by tensor, when it is built, still before any group moves;
        see :meth:`step`.)
        """
        current = current or {}
        for index, group in enumerate(self.param_groups):
            cached = current.get(index)
            variant = _VARIANT(group)
            if cached is None or variant != cached.variant:
                step_scalars.check_variant_options(*variant)
                if cached is not None:
                    cached.variant = variant
            step_scalars.store_python_scalars(group)
            lr = group["lr"]
            if isinstance(lr, torch.Tensor) and lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
            if cached is not None:
                continue
            params = [p for p in group["params"] if p.grad is not None]
            step_scalars.check_dense_gradients(p.grad for p in params)
            if group["fused"]:
                check_fused_group(group, group["params"])
                continue  # the fused kernel checks its own devices
            foreach = _uses_foreach(params, group["foreach"], group["differentiable"])
            if foreach and group["differentiable"]:
                raise AssertionError("_foreach ops don't support autograd")  # what the foreach path would raise
            if group["capturable"] and not torch.compiler.is_compiling():
                steps = [self.state[p]["step"] if len(self.state.get(p, {})) else p for p in params]
                # torch: XLA for the for-loop path only
                step_scalars.check_capturable_devices(params, steps, xla=not foreach)

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform a single optimization step.

        Args:
            closure: A closure that reevaluates the model and returns the loss.
        """
        graph_capture_health_check(self)

        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        # Every check of every group runs before any group is stepped. A fused group re-uses what its last step
        # found when nothing it depends on changed (radam.fused.group_step).
        fused_steps = self._fused.prepare(self)

        for index, group in enumerate(self.param_groups):
            if group["fused"]:
                fused_steps[index].launch(group)
                continue
            params_with_grad: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            exp_avgs: list[torch.Tensor] = []
            exp_avg_sqs: list[torch.Tensor] = []
            max_exp_avg_sqs: list[torch.Tensor] = []
            state_steps: list[torch.Tensor] = []
            beta1, beta2 = group["betas"]

            has_complex = self._init_group(
                group, params_with_grad, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps
            )

            _radam_checked(  # the functional step, without the option checks made above
                params_with_grad,
                grads,
                exp_avgs,
                exp_avg_sqs,
                state_steps,
                max_exp_avg_sqs=max_exp_avg_sqs,
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                fused=group["fused"],
                capturable=group["capturable"],
                differentiable=group["differentiable"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                degenerate=group["degenerate"],
                threshold=group["threshold"],
                rectifier=group["rectifier"],
                amsgrad=group["amsgrad"],
                has_complex=has_complex,
            )

        return loss


def _check_state_layout(state: Any) -> None:
    """``ValueError`` if some state tensor does not have its parameter's shape (or complexness)."""
    for param, p_state in state.items():
        if not isinstance(param, torch.Tensor) or not isinstance(p_state, dict):
            continue
        for key, value in p_state.items():
            if key == "step" or not isinstance(value, torch.Tensor):
                continue
            if value.shape != param.shape or value.is_complex() != param.is_complex():
                raise ValueError(
                    f"loaded state dict does not match the optimizer's parameters: state {key!r} has shape "
                    f"{tuple(value.shape)} and dtype {value.dtype}, its parameter has shape {tuple(param.shape)} "
                    f"and dtype {param.dtype} (was the state dict saved for a different parameter layout?)"
                )
