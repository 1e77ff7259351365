r"""The host side of a fused param group's step, kept from one step to the next.

A fused step is one kernel launch, but before it the optimizer must find every parameter's gradient and state and
check that the kernel can use them. Done the way ``torch.optim`` does it -- a Python loop over the parameters,
with a dozen attribute reads, dictionary look-ups and checks each -- that costs microseconds per parameter: for a
model of thousands of small tensors, milliseconds, far more than the kernel itself needs on a GPU.

:class:`FusedGroupStep` keeps what a group's last full step found: the parameters that had gradients, their state
tensors and the kernel's plan (:func:`radam.fused.build_plan`, which checked every tensor). A later step re-uses
it after confirming, with whole-list operations that run in C (``map`` over a list, one comparison of two lists),
that nothing the plan relies on has changed:

* the options that shape the lists and the plan (``amsgrad``, ``fused``, ``foreach``, ``differentiable``; every
  other option is read afresh at each launch, so a scheduler may change ``lr`` or ``betas`` every step) and the
  optimizer's ``state`` mapping (``load_state_dict`` replaces it);
* the same parameters have gradients; every parameter keeps its address, its number of elements and whether it is
  contiguous, and every gradient whether it is contiguous (with the strides compared for the few that are not):
  so ``p.data = ...`` (as ``module.to(...)`` does after the optimizer was made), a reshaped or sliced parameter and
  a transposed gradient are all seen;
* every parameter's state holds the same tensor objects (an entry replaced or deleted by hand is seen): at no cost
  per parameter when ``radam._counted_state`` counted no change to any optimizer state since the last step,
  entry by entry otherwise;
* the gradients' addresses: when autograd has re-allocated them (``zero_grad(set_to_none=True)``, the default),
  only the plan's gradient row is rewritten.

Anything else -- a first step, a new parameter, a gradient that appeared or vanished, a sparse gradient -- takes
the full path (``RAdam._init_group`` and a new plan, with every check). Not seen: a change of dtype that keeps the
element size and the address (``p.data = p.data.view(torch.int32)``), and the storage of a *state* tensor swapped
in place (``state["exp_avg"].data = ...``, ``.set_()``); in the second case the step keeps updating the original
storage, which this object holds, so no memory is written after it is freed. Gradients are not held: once
``zero_grad`` drops them, they are freed.
"""

from __future__ import annotations

import itertools
import operator
from typing import Any, Mapping

from torch import Tensor

from radam import _counted_state

_GRAD = operator.attrgetter("grad")
_DATA_PTR = Tensor.data_ptr
_NUMEL = Tensor.numel
_IS_CONTIGUOUS = Tensor.is_contiguous
_PLAN_OPTIONS = operator.itemgetter("amsgrad", "fused", "foreach", "differentiable")
"""The options the lists and the plan depend on; the others are read at every launch."""


class FusedGroupStep:
    """The lists and the kernel plan of one fused param group, valid while :meth:`refresh` returns True."""

    def __init__(
        self,
        group: dict[str, Any],
        state: Mapping[Tensor, dict[str, Any]],
        lists: list[list[Tensor]],
        plan: Any,
    ) -> None:
        """``lists`` are params-with-grad, grads, exp_avgs, exp_avg_sqs, state_steps[, max_exp_avg_sqs], as
        ``RAdam._init_group`` found them; ``plan`` the :func:`radam.fused.build_plan` for them."""
        params, grads, *state_lists = lists
        self.group = group
        self.state = state
        self.options = _PLAN_OPTIONS(group)
        self.n_params = len(group["params"])
        has_grad = [p.grad is not None for p in group["params"]]
        self.has_grad = None if all(has_grad) else has_grad  # None: every parameter has a gradient
        self.params = params
        self.plan = plan
        self.param_addresses = list(map(_DATA_PTR, params))
        self.param_numels = list(map(_NUMEL, params))
        self.param_contiguous = list(map(_IS_CONTIGUOUS, params))
        self.grad_addresses = list(map(_DATA_PTR, grads))
        self.grad_contiguous = list(map(_IS_CONTIGUOUS, grads))
        # where a parameter or its gradient is not contiguous, its strides are compared at every step
        self.strided = [
            (i, params[i].stride()) for i, (p, g) in enumerate(zip(self.param_contiguous, self.grad_contiguous))
            if not (p and g)
        ]
        self.state_keys = operator.itemgetter(
            "exp_avg", "exp_avg_sq", "step", *(["max_exp_avg_sq"] if group["amsgrad"] else [])
        )
        self.param_ids = list(map(id, params))
        self.state_changes = _counted_state.changes()  # state changes counted when state_ids were taken
        self.state_ids, self.counted = self._look_at_state(params)
        # the state tensors, so that their ids stay theirs, and the storages the plan points at (gradients aside), so
        # that none is freed while the plan may still be used
        self.state_tensors = [t for lst in state_lists for t in lst]
        self.storages = [t.untyped_storage() for lst in (params, *state_lists) for t in lst]

    def _look_at_state(self, params: list[Tensor]) -> tuple[list[int], bool]:
        """The ids of every parameter's state tensors, and whether their changes are all counted (the state is a
        CountedState of ParamStates). TypeError: a parameter has no state; KeyError: an entry is missing."""
        entries = list(map(self.state.get, params))
        ids = list(map(id, itertools.chain.from_iterable(map(self.state_keys, entries))))
        counted = isinstance(self.state, _counted_state.CountedState) and all(
            map(isinstance, entries, itertools.repeat(_counted_state.ParamState))
        )
        return ids, counted

    def _same_state(self, params: list[Tensor]) -> bool:
        """Whether every parameter's state holds the tensor objects it held (KeyError: an entry was deleted).

        Where the state counts its changes (a CountedState of ParamStates) and none was counted since the last
        look, nothing can have been replaced; otherwise each entry is looked at. The ids are those of tensors this
        object holds, so no other tensor can have them."""
        changes = _counted_state.changes()
        if self.counted and changes == self.state_changes:
            return True
        ids, counted = self._look_at_state(params)
        if ids != self.state_ids:
            return False
        self.state_changes, self.counted = changes, counted
        return True

    def refresh(self, group: dict[str, Any], state: Mapping[Tensor, dict[str, Any]]) -> bool:
        """Whether the cached lists and plan still describe ``group``; if so, point the plan at the current
        gradients. False means "take the full path"; nothing has been changed then."""
        if group is not self.group or state is not self.state or len(group["params"]) != self.n_params:
            return False
        if _PLAN_OPTIONS(group) != self.options:
            return False
        params, grads = group["params"], list(map(_GRAD, group["params"]))
        if self.has_grad is not None:
            if list(map(operator.is_not, grads, itertools.repeat(None))) != self.has_grad:
                return False
            params = list(itertools.compress(params, self.has_grad))
            grads = list(itertools.compress(grads, self.has_grad))
        try:
            grad_addresses = list(map(_DATA_PTR, grads))  # TypeError: a gradient is None; RuntimeError: sparse
            if (
                list(map(_DATA_PTR, params)) != self.param_addresses
                or list(map(_NUMEL, params)) != self.param_numels
                or list(map(_IS_CONTIGUOUS, params)) != self.param_contiguous
                or list(map(_IS_CONTIGUOUS, grads)) != self.grad_contiguous
                or any(params[i].stride() != strides or grads[i].stride() != strides for i, strides in self.strided)
                or list(map(id, params)) != self.param_ids  # the group's list holds other tensors
                or not self._same_state(params)
            ):
                return False
        except (TypeError, KeyError, RuntimeError):
            return False
        if grad_addresses != self.grad_addresses:
            from radam.fused import point_at_gradients

            try:
                point_at_gradients(self.plan, self.params, grads, grad_addresses)
            except RuntimeError:
                return False  # a gradient of another layout (the full path names it), or a CUDA graph's plan
            self.grad_addresses = grad_addresses
        return True

    def check_lr(self, lr: Any) -> None:
        """``RuntimeError`` if the kernel cannot read ``lr`` (a tensor on another device than the parameters)."""
        from radam.fused import check_lr

        check_lr(self.plan, lr)

    def launch(self, group: dict[str, Any]) -> None:
        """One fused step of the group with its current ``lr`` and options."""
        from radam.fused import launch_plan

        beta1, beta2 = group["betas"]
        launch_plan(
            self.plan,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            degenerate=group["degenerate"],
            threshold=group["threshold"],
            rectifier=group["rectifier"],
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
        )
