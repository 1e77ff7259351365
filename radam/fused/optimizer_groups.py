r"""What ``radam.RAdam`` keeps for its fused param groups, behind one object: :class:`FusedGroups`.

The optimizer stays shaped like ``torch.optim``'s; everything that only a fused group needs is here:

* the step of each fused group kept from one step to the next (:class:`radam.fused.group_step.FusedGroupStep`),
  rebuilt where it no longer fits, with the lazily created state undone if any check fails (``prepare``);
* the tuning of the plans built for them (:class:`radam.fused.Tuning`);
* the float32 moments of bfloat16 and float16 parameters: kept exact by ``load_state_dict``
  (``FusedGroups.float32_moments``), restored by ``__setstate__`` (``FusedGroups.loaded``), and refused
  with a clear error when a group is no longer fused (:func:`check_moments_fit`);
* DTensor parameters (FSDP2), stepped on each rank's local shards (``_local_tensors``).

The kernel's functions are reached through ``radam.functional.load_fused()``, so that a machine where the fused
step cannot run gets one clear error.
"""

from __future__ import annotations

from typing import Any

import torch

from radam.functional import check_fused, load_fused
from radam.fused.group_step import FusedGroupStep

__all__ = ["FusedGroups", "cached_plan", "check_fused_group", "check_moments_fit"]

LOW_PRECISION = (torch.float16, torch.bfloat16)
"""Parameter dtypes whose moments the fused step keeps in float32."""
MOMENT_KEYS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
_SavedState = dict[torch.Tensor, "tuple[dict[str, Any], dict[str, Any]] | None"]
"""A parameter's state dict and a copy of its entries, or None where it had no state (``_save_state``)."""


class FusedGroups:
    """The fused param groups of one ``radam.RAdam``: their cached steps (param group index ->
    :class:`radam.fused.group_step.FusedGroupStep`), the groups that were fused at the last step (or in the state
    loaded), and the tuning of the plans (``None``: :data:`radam.fused.tuning.DEFAULT_TUNING`, read when a plan is
    built)."""

    def __init__(self, tuning: Any = None) -> None:
        self.steps: dict[int, FusedGroupStep] = {}
        self.fused_before: set[int] = set()
        self.tuning = tuning

    def loaded(self, param_groups: list[dict[str, Any]], state: Any) -> None:
        """After the optimizer's state was loaded (``load_state_dict``, a copy, unpickling): remember which groups are
        fused, and give their bfloat16 and float16 parameters float32 moments again (``load_state_dict`` casts state
        to the parameter's dtype)."""
        for index, group in enumerate(param_groups):
            if not group["fused"]:
                continue
            self.fused_before.add(index)
            for p in group["params"]:
                p_state = state.get(p, [])
                if len(p_state) == 0 or p.dtype not in LOW_PRECISION:
                    continue
                for key in MOMENT_KEYS:
                    if key in p_state and p_state[key].dtype != torch.float32:
                        p_state[key] = p_state[key].to(torch.float32)

    @staticmethod
    def float32_moments(
        param_groups: list[dict[str, Any]], state_dict: dict[str, Any]
    ) -> list[tuple[torch.Tensor, str, torch.Tensor]]:
        """The saved float32 moments that ``load_state_dict`` must not round: ``(param, key, saved tensor)``."""
        saved_groups, saved_state = state_dict.get("param_groups"), state_dict.get("state")
        if not isinstance(saved_groups, list) or not isinstance(saved_state, dict):
            return []  # the base class reports what is wrong
        exact = []
        for group, saved in zip(param_groups, saved_groups):
            if not isinstance(saved, dict) or not saved.get("fused") or len(saved["params"]) != len(group["params"]):
                continue
            for param, param_id in zip(group["params"], saved["params"]):
                entry = saved_state.get(param_id)
                if param.dtype not in LOW_PRECISION or not isinstance(entry, dict):
                    continue
                for key in MOMENT_KEYS:
                    value = entry.get(key)
                    if torch.is_tensor(value) and value.dtype == torch.float32:
                        exact.append((param, key, value))
        return exact

    def prepare(self, optimizer: Any) -> dict[int, FusedGroupStep]:
        """Every check of every group, and the step of every fused group: its cached one where ``refresh``
        confirms it, else a new one (state created lazily, plan built and checked). If any check fails, the state
        is restored as it was and the error raised: nothing has moved."""
        groups, state = optimizer.param_groups, optimizer.state
        fused_steps = self.steps
        fused = [index for index, group in enumerate(groups) if group["fused"]]
        for index in self.fused_before.difference(fused):
            if index < len(groups):  # fused=True switched off since the last step
                check_moments_fit(index, groups[index]["params"], state)
        self.fused_before = set(fused)
        stale = [
            i for i, s in fused_steps.items() if i >= len(groups) or s.group is not groups[i] or not groups[i]["fused"]
        ]
        for index in stale:
            del fused_steps[index]  # a group removed, replaced or no longer fused: let its tensors go
        current = {}
        for index in fused:
            cached = fused_steps.get(index)
            if cached is not None and cached.refresh(groups[index], state):
                current[index] = cached
        optimizer._validate_before_step(current)
        rebuild = [index for index in fused if index not in current]
        saved = _save_state(state, [groups[index] for index in rebuild]) if rebuild else {}
        try:
            for index in rebuild:
                fused_steps[index] = self._new_group_step(optimizer, groups[index])
            for index in fused:
                fused_steps[index].check_lr(groups[index]["lr"])
        except BaseException:
            _restore_state(state, saved)
            for index in rebuild:
                fused_steps.pop(index, None)
            raise
        return {index: fused_steps[index] for index in fused}

    def _new_group_step(self, optimizer: Any, group: dict[str, Any]) -> FusedGroupStep:
        """Collect a fused group's lists (creating state lazily) and build the kernel's plan, checking every tensor."""
        lists: list[list[torch.Tensor]] = [[] for _ in range(6)]
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps = lists
        optimizer._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps)
        kernel_lists = [params, grads, exp_avgs, exp_avg_sqs, state_steps]
        if group["amsgrad"]:
            kernel_lists.append(max_exp_avg_sqs)
        local_lists = _local_tensors(kernel_lists)
        plan = load_fused().build_plan(local_lists, group["amsgrad"], self.tuning)
        if local_lists is kernel_lists:
            return FusedGroupStep(group, optimizer.state, kernel_lists, plan)
        return _DTensorGroupStep(group, optimizer.state, kernel_lists, plan)


def _save_state(state: Any, groups: list[dict[str, Any]]) -> _SavedState:
    """What ``_restore_state`` needs to undo the lazy creation of state for these groups' parameters."""
    return {p: (state[p], dict(state[p])) if p in state else None for group in groups for p in group["params"]}


def _restore_state(state: Any, saved: _SavedState) -> None:
    for p, before in saved.items():
        if before is None:
            state.pop(p, None)
        else:
            entries, contents = before
            entries.clear()
            entries.update(contents)
            state[p] = entries


def check_moments_fit(group_index: int, params: list[torch.Tensor], state: dict[Any, Any]) -> None:
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
        for key in MOMENT_KEYS:
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


def check_fused_group(options: dict[str, Any], params: list[Any]) -> None:
    """``RuntimeError`` unless a group with ``fused=True`` can run the fused kernel (torch's messages and order)."""
    if options["differentiable"]:
        raise RuntimeError("`fused` does not support `differentiable`")
    if options["foreach"]:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    check_fused([p[1] if isinstance(p, tuple) else p for p in params])  # named parameters come as (name, tensor)


class _DTensorGroupStep(FusedGroupStep):
    """A fused group of DTensor parameters, stepped on each rank's local tensors (``_local_tensors``). Its plan is
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


def cached_plan(optimizer: Any, group_index: int = 0) -> Any:
    """The plan (:class:`radam.fused.plan.Plan`) that the fused step of param group ``group_index`` of a
    ``radam.RAdam`` kept from its last step for the next, or ``None`` (no fused step yet, or it was dropped). For
    inspection: a later step re-uses this very object while nothing it relies on has changed."""
    step = optimizer._fused.steps.get(group_index)
    return None if step is None else step.plan
