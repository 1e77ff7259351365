r"""``radam.RAdam``: a drop-in ``torch.optim.RAdam`` with every variant the literature argues about as an option.

The class is thin, in the style of ``torch.optim``: it validates arguments, keeps every hyperparameter and flag
in the param groups (hence per group and in ``state_dict()``), creates the per-parameter state lazily, and calls
the functional step ``radam.functional.radam`` once per param group.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterable

import torch
from torch.optim import Optimizer

from radam._counted_state import CountedState, ParamState
from radam._fused_group import FusedGroupStep, FusedSteps
from radam._step_scalars import check_dense_gradients, check_variant_options, store_python_scalars
from radam._torch_compat import _get_scalar_dtype, _use_grad_for_differentiable, graph_capture_health_check
from radam.functional import _check_capturable_devices, _radam_checked, _uses_foreach, check_fused, load_fused

__all__ = ["RAdam"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_VARIANT_KEYS = ("degenerate", "threshold", "rectifier", "amsgrad")
_VARIANT = operator.itemgetter(*_VARIANT_KEYS)
_MOMENT_KEYS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
_SavedState = dict[torch.Tensor, "tuple[dict[str, Any], dict[str, Any]] | None"]
"""A parameter's state dict and a copy of its entries, or None where it had no state (``RAdam._save_state``)."""


def _check_moments_fit(group_index: int, params: list[torch.Tensor], state: dict[Any, Any]) -> None:
    """Raise ``ValueError`` naming the parameter if its moments do not fit it for the for-loop and foreach paths:
    another shape or another dtype. Run when a group that was fused at the last step, or in the state that was
    loaded (``load_state_dict``, a copy, unpickling), is not fused now: the fused step keeps float32 moments for
    bfloat16 and float16 parameters, which the other paths cannot use. (Not run at every step, where it
    would cost as much host time as the other checks together: a parameter replaced by one of another shape after
    steps were taken fails inside torch's ops, as it does in ``torch.optim.RAdam``.)"""
    for position, p in enumerate(params):
        p_state = state.get(p)
        if not p_state or p.grad is None:
            continue
        for key in _MOMENT_KEYS:
            moment = p_state.get(key)
            if moment is None:
                continue
            if moment.shape != p.shape:
                raise ValueError(
                    f"param group {group_index}, parameter {position}: state {key!r} has shape {tuple(moment.shape)} "
                    f"but the parameter has shape {tuple(p.shape)} (was the parameter replaced after steps were "
                    "taken?); the state was left as it was"
                )
            if moment.dtype != p.dtype:
                raise ValueError(
                    f"param group {group_index}, parameter {position}: state {key!r} is {moment.dtype} but the "
                    f"parameter is {p.dtype}; the for-loop and foreach paths keep the moments in the parameter's "
                    "dtype (float32 moments of a low-precision parameter belong to fused=True). The state was left "
                    "as it was: step with fused=True, or convert the moments yourself (state[p][key] = "
                    "state[p][key].to(p.dtype), which rounds them)"
                )


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
        check_variant_options(degenerate, threshold, rectifier, amsgrad)
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
        self._fused_steps = FusedSteps()  # what each fused group's last step found; see step()
        self._fused_before: set[int] = set()  # the groups that were fused at the last step (or when loaded)
        super().__init__(params, defaults)  # checks every group with add_param_group, fused included
        self.state = CountedState.wrap(self.state)  # counts replaced entries for the fused step's cache

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group after checking its options: ``ValueError`` for a variant option, ``RuntimeError``
        for ``fused`` where it cannot run, raised before anything is added (construction adds its groups here too).
        """
        if isinstance(param_group, dict):
            options = {**self.defaults, **param_group}
            check_variant_options(*(options[key] for key in _VARIANT_KEYS))
            for key, python_type in (("threshold", float), ("amsgrad", bool)):
                if key in param_group:
                    param_group[key] = python_type(param_group[key])
            if options["fused"]:
                params = param_group.get("params", [])
                if not isinstance(params, (torch.Tensor, set)):  # normalised as the base class does (it rejects sets)
                    params = param_group["params"] = list(params)
                _check_fused_group(options, [params] if isinstance(params, torch.Tensor) else params)
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
        self._fused_steps = FusedSteps(getattr(getattr(self, "_fused_steps", None), "tuning", None))
        self._fused_before: set[int] = set()
        for index, group in enumerate(self.param_groups):
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
            if fused:
                self._fused_before.add(index)
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
                if fused and p.dtype in _LOW_PRECISION:
                    # load_state_dict casts state to the parameter's dtype; the fused kernel keeps float32 moments
                    for key in _MOMENT_KEYS:
                        if key in p_state and p_state[key].dtype != torch.float32:
                            p_state[key] = p_state[key].to(torch.float32)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``torch.optim.Optimizer.load_state_dict``, except that the float32 moments of bfloat16 or float16
        parameters in fused groups load exactly: torch casts every state tensor to its parameter's dtype, which would
        round them. Load-state-dict pre-hooks run first, as in torch, and their changes are kept."""
        exact: list[tuple[torch.Tensor, str, torch.Tensor]] = []

        def remember_float32_moments(optimizer: Optimizer, loaded: dict[str, Any]) -> None:
            exact.extend(self._fused_float32_moments(loaded))  # registered last: sees what the user's hooks made

        handle = self.register_load_state_dict_pre_hook(remember_float32_moments)
        try:
            super().load_state_dict(state_dict)
        finally:
            handle.remove()
        for param, key, value in exact:
            self.state[param][key] = value.to(device=param.device, dtype=torch.float32, copy=True)

    def _fused_float32_moments(self, state_dict: dict[str, Any]) -> list[tuple[torch.Tensor, str, torch.Tensor]]:
        """The saved float32 moments that ``load_state_dict`` must not round: ``(param, key, saved tensor)``."""
        saved_groups, saved_state = state_dict.get("param_groups"), state_dict.get("state")
        if not isinstance(saved_groups, list) or not isinstance(saved_state, dict):
            return []  # the base class reports what is wrong
        exact = []
        for group, saved in zip(self.param_groups, saved_groups):
            if not isinstance(saved, dict) or not saved.get("fused") or len(saved["params"]) != len(group["params"]):
                continue
            for param, param_id in zip(group["params"], saved["params"]):
                entry = saved_state.get(param_id)
                if param.dtype not in _LOW_PRECISION or not isinstance(entry, dict):
                    continue
                for key in _MOMENT_KEYS:
                    value = entry.get(key)
                    if torch.is_tensor(value) and value.dtype == torch.float32:
                        exact.append((param, key, value))
        return exact

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
                moment_dtype = torch.float32 if fused and p.dtype in _LOW_PRECISION else None
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
                check_variant_options(*variant)
                if cached is not None:
                    cached.variant = variant
            store_python_scalars(group)
            lr = group["lr"]
            if isinstance(lr, torch.Tensor) and lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
            if cached is not None:
                continue
            params = [p for p in group["params"] if p.grad is not None]
            check_dense_gradients(p.grad for p in params)
            if group["fused"]:
                _check_fused_group(group, group["params"])
                continue  # the fused kernel checks its own devices
            foreach = _uses_foreach(params, group["foreach"], group["differentiable"])
            if foreach and group["differentiable"]:
                raise AssertionError("_foreach ops don't support autograd")  # what the foreach path would raise
            if group["capturable"] and not torch.compiler.is_compiling():
                steps = [self.state[p]["step"] if len(self.state.get(p, {})) else p for p in params]
                _check_capturable_devices(params, steps, xla=not foreach)  # torch: XLA for the for-loop path only

    def _prepare_step(self) -> dict[int, FusedGroupStep]:
        """Every check of every group, and the step of every fused group: its cached one where ``refresh``
        confirms it, else a new one (state created lazily, plan built and checked). If any check fails, the state
        is restored as it was and the error raised: nothing has moved."""
        groups = self.param_groups
        fused_steps = self._fused_steps
        fused = [index for index, group in enumerate(groups) if group["fused"]]
        for index in self._fused_before.difference(fused):
            if index < len(groups):  # fused=True switched off since the last step
                _check_moments_fit(index, groups[index]["params"], self.state)
        self._fused_before = set(fused)
        stale = [
            i for i, s in fused_steps.items() if i >= len(groups) or s.group is not groups[i] or not groups[i]["fused"]
        ]
        for index in stale:
            del fused_steps[index]  # a group removed, replaced or no longer fused: let its tensors go
        current = {}
        for index in fused:
            cached = fused_steps.get(index)
            if cached is not None and cached.refresh(groups[index], self.state):
                current[index] = cached
        self._validate_before_step(current)
        rebuild = [index for index in fused if index not in current]
        saved = self._save_state([groups[index] for index in rebuild]) if rebuild else {}
        try:
            for index in rebuild:
                fused_steps[index] = self._fused_step(groups[index])
            for index in fused:
                fused_steps[index].check_lr(groups[index]["lr"])
        except BaseException:
            self._restore_state(saved)
            for index in rebuild:
                fused_steps.pop(index, None)
            raise
        return {index: fused_steps[index] for index in fused}

    def _save_state(self, groups: list[dict[str, Any]]) -> _SavedState:
        """What :meth:`_restore_state` needs to undo the lazy creation of state for these groups' parameters."""
        return {
            p: (self.state[p], dict(self.state[p])) if p in self.state else None
            for group in groups
            for p in group["params"]
        }

    def _restore_state(self, saved: _SavedState) -> None:
        for p, before in saved.items():
            if before is None:
                self.state.pop(p, None)
            else:
                entries, contents = before
                entries.clear()
                entries.update(contents)
                self.state[p] = entries

    def _fused_step(self, group: dict[str, Any]) -> FusedGroupStep:
        """Collect a fused group's lists (creating state lazily) and build the kernel's plan, checking every tensor."""
        lists: list[list[torch.Tensor]] = [[] for _ in range(6)]
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps = lists
        self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps)
        kernel_lists = [params, grads, exp_avgs, exp_avg_sqs, state_steps]
        if group["amsgrad"]:
            kernel_lists.append(max_exp_avg_sqs)
        local_lists = _local_tensors(kernel_lists)
        plan = load_fused().build_plan(local_lists, group["amsgrad"], self._fused_steps.tuning)
        if local_lists is kernel_lists:
            return FusedGroupStep(group, self.state, kernel_lists, plan)
        return _DTensorGroupStep(group, self.state, kernel_lists, plan)

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
        # found when nothing it depends on changed (radam._fused_group).
        fused_steps = self._prepare_step()

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


def _check_fused_group(options: dict[str, Any], params: list[Any]) -> None:
    """``RuntimeError`` unless a group with ``fused=True`` can run the fused kernel (torch's messages and order)."""
    if options["differentiable"]:
        raise RuntimeError("`fused` does not support `differentiable`")
    if options["foreach"]:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    check_fused([p[1] if isinstance(p, tuple) else p for p in params])  # named parameters come as (name, tensor)


class _DTensorGroupStep(FusedGroupStep):
    """A fused group of DTensor parameters, stepped on each rank's local tensors (:func:`_local_tensors`). Its plan is
    built anew at every step: the checks that let a cached plan be re-used read data pointers, which a DTensor lacks."""

    def __init__(self, group: dict[str, Any], state: Any, lists: list[list[torch.Tensor]], plan: Any) -> None:
        self.group, self.state, self.plan = group, state, plan  # nothing else is kept for a later step

    def refresh(self, group: dict[str, Any], state: Any) -> bool:
        return False


def _local_tensors(lists: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """The fused kernel's lists with every DTensor (FSDP2, tensor parallelism) replaced by this rank's local tensor.

    The step is element-wise, so a rank that updates its shards of a parameter, its gradient and its moments
    computes the bits the whole tensors would get, provided they are all split alike. ``RuntimeError`` naming the
    parameter where a gradient or moment of a DTensor parameter is laid out otherwise (other placements or mesh).
    """
    if all(type(p) in (torch.Tensor, torch.nn.Parameter) for p in lists[0]):
        return lists
    from torch.distributed.tensor import DTensor

    params, grads, exp_avgs, exp_avg_sqs, _, *max_exp_avg_sqs = lists
    for name, tensors in [("grad", grads), ("exp_avg", exp_avgs), ("exp_avg_sq", exp_avg_sqs)] + [
        ("max_exp_avg_sq", t) for t in max_exp_avg_sqs
    ]:
        for i, (p, tensor) in enumerate(zip(params, tensors)):
            if isinstance(p, DTensor) and not (
                isinstance(tensor, DTensor) and (tensor.device_mesh, tensor.placements) == (p.device_mesh, p.placements)
            ):
                layout = f"{tensor.placements}" if isinstance(tensor, DTensor) else f"a {type(tensor).__name__}"
                raise RuntimeError(
                    f"fused=True steps each rank's local shard of a DTensor, so the {name} of parameter {i} must be "
                    f"laid out as the parameter ({p.placements} on {p.device_mesh}); it is {layout}. Use fused=False"
                )
    return [[t.to_local() if isinstance(t, DTensor) else t for t in tensors] for tensors in lists]


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
