r"""The host side of a fused param group's step, kept from one step to the next.

A fused step is one kernel launch, but before it the optimizer must find every parameter's gradient and state and
check that the kernel can use them. Done the way ``torch.optim`` does it -- a Python loop over the parameters,
with a dozen attribute reads, dictionary look-ups and checks each -- that costs microseconds per parameter: for a
model of thousands of small tensors, milliseconds, far more than the kernel itself needs on a GPU.

:class:`FusedGroupStep` keeps what a group's last full step found: the parameters that had gradients, their state
tensors and the kernel's plan (:func:`radam.fused.build_plan`, which checked every tensor). A later step re-uses it
when nothing the plan relies on has changed. When the gradients are the tensors of the last step, the test costs
one pass over them (``map`` running C functions) and a few comparisons of one value each:

* **The group and its options.** The same group dict, ``params`` list (of the same length) and ``state`` mapping
  (``load_state_dict`` replaces it), and the same options that shape the lists and the plan (``amsgrad``, ``fused``,
  ``foreach``, ``differentiable``; every other option is read afresh at each launch, so a scheduler may change
  ``lr`` or ``betas`` every step).
* **The state entries** hold the same tensor objects: at no cost per parameter when ``radam._counted_state``
  counted no change to any optimizer state since the last look, entry by entry otherwise.
* **The gradients** are the very tensor objects of the last step (``p.grad is g`` for each, against weak
  references, so that no gradient is kept alive after ``zero_grad``), or ``None`` where there was none. The weak
  references' callbacks note every gradient that is freed, so "the same object" cannot be a new tensor that got a
  freed one's id.
* **The memory** the plan points at is still the tensors': every storage it points at is watched by a weak
  reference whose callback notes its release. A parameter given new memory (``p.data = ...``, as ``module.to()``,
  ``.half()`` or a change of memory format do; ``p.set_(...)``; ``torch.utils.swap_tensors``) releases its old
  storage, and the next step rebuilds; so does a state tensor given new memory (``state["exp_avg"].data = ...``)
  or a watched gradient (``p.grad.set_(...)``, ``p.grad.data = ...``).

Gradients are watched once the same ones (by id) come back at a second step running, as they do with
``zero_grad(set_to_none=False)`` or gradient accumulation. New gradient tensors, as ``zero_grad()`` (whose default
is ``set_to_none=True``) and ``backward()`` leave them, are read instead: the group must still hold the plan's
parameter objects, and each gradient's address, number of elements and layout (contiguous where its parameter
is, the same strides where it is not) are compared with the plan's; its gradient row is rewritten if the
addresses moved. A watch that ends doubles the number of repeats the next one waits for (up to 64), so that
gradients freed and re-made at every step, which may get back the same ids, are not watched and dropped at every
step. Anything else -- a first step, a new parameter, a gradient that appeared or vanished, a sparse gradient,
released memory -- takes the full path (``RAdam._init_group`` and a new plan, with every check; see
:class:`radam.fused.optimizer_groups.FusedGroups`).

Not seen, because nothing is released and nothing is read: a tensor pointed at other memory while its old memory
stays alive elsewhere (``backup = p.data; p.data = other``); a tensor re-viewed on its own memory (``p.data =
p.data[:2]``, ``p.t_()``, ``p.data = p.data.view(torch.int32)``) while its gradient stays the same tensor (a new
gradient of the new shape or layout is seen); the same done to a gradient between the two steps that start
watching it. The step then keeps updating the memory the plan points at, memory that something still holds. Not
seen either, and not to be done to the tensors of a fused optimizer: a storage resized in place
(``t.untyped_storage().resize_(...)``), which moves its memory without releasing the storage.
"""

from __future__ import annotations

import itertools
import operator
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import torch

from radam import _counted_state

_GRAD = operator.attrgetter("grad")
_DATA_PTR = torch.Tensor.data_ptr
_NUMEL = torch.Tensor.numel
_IS_CONTIGUOUS = torch.Tensor.is_contiguous
_STORAGE = torch.Tensor.untyped_storage
_NO_GRADIENT: Callable[[], None] = type(None)  # called, gives None: where a parameter had no gradient
_PLAN_OPTIONS = operator.itemgetter("amsgrad", "fused", "foreach", "differentiable")
"""The options the lists and the plan depend on; the others are read at every launch."""
_VARIANT = operator.itemgetter("degenerate", "threshold", "rectifier", "amsgrad")
_MOST_STEPS_UNWATCHED = 64


def _watch(tensors: Any, on_release: Callable[[Any], None]) -> list[weakref.ref]:
    """Weak references to the storages of ``tensors``, each calling ``on_release`` when its storage is freed."""
    return list(map(weakref.ref, map(_STORAGE, tensors), itertools.repeat(on_release)))


class FusedGroupStep:
    """The lists and the kernel plan of one fused param group, valid while ``refresh`` returns True."""

    def __init__(
        self,
        group: dict[str, Any],
        state: Mapping[torch.Tensor, dict[str, Any]],
        lists: list[list[torch.Tensor]],
        plan: Any,
    ) -> None:
        """``lists`` are params-with-grad, grads, exp_avgs, exp_avg_sqs, state_steps[, max_exp_avg_sqs], as
        ``RAdam._init_group`` found them; ``plan`` the :func:`radam.fused.build_plan` for them."""
        params, grads, *state_lists = lists
        self.group = group
        self.state = state
        self.options = _PLAN_OPTIONS(group)
        self.variant = _VARIANT(group)  # checked by the optimizer before the plan was built; see FusedGroups.prepare
        self.group_params = group["params"]
        self.n_params = len(self.group_params)
        self.param_objects = tuple(self.group_params)  # the parameters, in order (the list may be changed in place)
        has_grad = [p.grad is not None for p in self.group_params]
        self.has_grad = None if all(has_grad) else has_grad  # None: every parameter has a gradient
        self.params = params
        self.plan = plan
        # what new gradient tensors are compared with: the parameters' sizes and layouts when the plan was built
        self.grad_addresses = list(map(_DATA_PTR, grads))
        self.numels = list(map(_NUMEL, params))
        self.contiguous = list(map(_IS_CONTIGUOUS, params))
        self.strided = [(i, params[i].stride()) for i, c in enumerate(self.contiguous) if not c]
        self.state_keys = operator.itemgetter(
            "exp_avg", "exp_avg_sq", "step", *(["max_exp_avg_sq"] if group["amsgrad"] else [])
        )
        self.state_changes = _counted_state.changes()  # state changes counted when state_ids were taken
        self.state_ids, self.counted = self._look_at_state(params)
        # the state tensors, so that their ids stay theirs (the parameters are held by self.params)
        self.state_tensors = [t for lst in state_lists for t in lst]
        # non-empty once a storage the plan points at (a parameter's, a state tensor's) is released
        self.released: list[weakref.ref] = []
        self.storages = _watch(itertools.chain(params, self.state_tensors), self.released.append)
        # the gradients: their ids, and once the same ids are seen at `watch_after` steps running, weak references
        # to the gradients and their storages; every watch that ends doubles `watch_after` (up to
        # _MOST_STEPS_UNWATCHED),
        # so that ids recycled by gradients freed and re-made at every step do not cost a watch at every step
        self.grad_ids = list(map(id, map(_GRAD, self.group_params)))
        self.same_ids = 0
        self.watch_after = 1
        self.gradients_released: list[weakref.ref] = []  # non-empty once a watched gradient or storage is released
        self.grad_refs: list[Any] | None = None
        self.grad_storages: list[weakref.ref] | None = None

    def _look_at_state(self, params: list[torch.Tensor]) -> tuple[list[int], bool]:
        """The ids of every parameter's state tensors, and whether their changes are all counted (the state is a
        CountedState of ParamStates). TypeError: a parameter has no state; KeyError: an entry is missing."""
        entries = list(map(self.state.get, params))
        ids = list(map(id, itertools.chain.from_iterable(map(self.state_keys, entries))))
        counted = isinstance(self.state, _counted_state.CountedState) and all(
            map(isinstance, entries, itertools.repeat(_counted_state.ParamState))
        )
        return ids, counted

    def _same_state(self) -> bool:
        """Whether every parameter's state holds the tensor objects it held.

        Where the state counts its changes (a CountedState of ParamStates) and none was counted since the last
        look, nothing can have been replaced; otherwise each entry is looked at. The ids are those of tensors this
        object holds, so no other tensor can have them."""
        changes = _counted_state.changes()
        if self.counted and changes == self.state_changes:
            return True
        try:
            ids, counted = self._look_at_state(self.params)
        except (TypeError, KeyError):  # a parameter's state, or an entry of it, was deleted
            return False
        if ids != self.state_ids:
            return False
        self.state_changes, self.counted = changes, counted
        return True

    def refresh(self, group: dict[str, Any], state: Mapping[torch.Tensor, dict[str, Any]]) -> bool:
        """Whether the cached lists and plan still describe ``group``; if so, the plan points at the current
        gradients. False means "take the full path"."""
        if (
            group is not self.group
            or state is not self.state
            or self.released
            or group["params"] is not self.group_params
            or len(self.group_params) != self.n_params
            or _PLAN_OPTIONS(group) != self.options
            or not self._same_state()
        ):
            return False
        grads = list(map(_GRAD, self.group_params))
        if self.grad_refs is not None:  # watched: nothing to do if they are the same tensors, none released
            if not self.gradients_released and all(map(operator.is_, grads, map(operator.call, self.grad_refs))):
                return True
            self.grad_refs = self.grad_storages = None
            self.watch_after = min(2 * self.watch_after, _MOST_STEPS_UNWATCHED)
        ids = list(map(id, grads))
        if not self._take_gradients(grads):
            return False
        self.same_ids = self.same_ids + 1 if ids == self.grad_ids else 0
        if self.same_ids >= self.watch_after:  # the same ids steps running (most likely the same tensors): watch
            self._watch_gradients(grads)
        self.grad_ids = ids
        return True

    def _with_grad(self, grads: list[Any]) -> list[Any]:
        return grads if self.has_grad is None else list(itertools.compress(grads, self.has_grad))

    def _take_gradients(self, grads: list[torch.Tensor | None]) -> bool:
        """Check gradient tensors that are not watched (the group's parameters are the plan's; a gradient where the
        plan has one, with its parameter's number of elements and layout) and point the plan at them. False: take
        the full path."""
        if not all(map(operator.is_, self.group_params, self.param_objects)):
            return False  # a parameter replaced in the group's list (its gradient is another tensor, or None)
        if self.has_grad is not None and list(map(operator.is_not, grads, itertools.repeat(None))) != self.has_grad:
            return False
        kernel_grads = self._with_grad(grads)
        try:  # TypeError: a gradient is None; RuntimeError: one without memory of its own (sparse)
            addresses = list(map(_DATA_PTR, kernel_grads))
            if (
                list(map(_NUMEL, kernel_grads)) != self.numels
                or list(map(_IS_CONTIGUOUS, kernel_grads)) != self.contiguous
                or any(kernel_grads[i].stride() != strides for i, strides in self.strided)
            ):
                return False
        except (TypeError, RuntimeError):
            return False
        if addresses != self.grad_addresses:
            from radam.fused import point_at_gradients

            try:
                point_at_gradients(self.plan, self.params, kernel_grads, addresses)
            except RuntimeError:
                return False  # a gradient of another dtype (the full path names it), or a CUDA graph's plan
            self.grad_addresses = addresses
        return True

    def _watch_gradients(self, grads: list[torch.Tensor | None]) -> None:
        """Watch gradient tensors just checked: weak references to them (``_NO_GRADIENT`` where there is none) and
        to their storages, whose release is noted in ``gradients_released``."""
        self.gradients_released.clear()
        on_release = self.gradients_released.append
        if self.has_grad is None:
            self.grad_refs = list(map(weakref.ref, grads, itertools.repeat(on_release)))
        else:
            self.grad_refs = [_NO_GRADIENT if g is None else weakref.ref(g, on_release) for g in grads]
        self.grad_storages = _watch(self._with_grad(grads), on_release)

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
