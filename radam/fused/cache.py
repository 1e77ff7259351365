"""The plans kept between steps: :class:`radam.fused.PlanCache`, the plans of :func:`radam.fused.fused_radam`,
and the plans a CUDA graph has recorded, which must outlive any cache (:data:`CAPTURED`)."""

from __future__ import annotations

import itertools
import operator

import torch

from radam.fused.checks import capturing
from radam.fused.plan import Plan, build_plan, fits, point_at_gradients
from radam.fused.tuning import Tuning

__all__ = ["CAPTURED", "PLAN_CACHE", "PlanCache", "keep_for_graphs"]

_MAX_PLANS_PER_GROUP = 4  # addresses that alternate between steps (gradients freed and re-allocated) stay cached
_MAX_GROUPS = 256
_DTYPE = operator.attrgetter("dtype")


class PlanCache:
    """The plans :func:`fused_radam` keeps between calls: a few per list of tensors.

    A plan is re-used while every tensor has the address, size and layout it was built for; when only the
    gradients moved, as they do when autograd frees and re-allocates them between steps, its gradient row is
    rewritten in place (unless a CUDA graph recorded it). Up to ``plans_per_list`` plans are kept per list (so
    that addresses alternating between steps stay cached) and up to ``max_lists`` lists, oldest first out.
    """

    def __init__(self, max_lists: int = _MAX_GROUPS, plans_per_list: int = _MAX_PLANS_PER_GROUP) -> None:
        self.max_lists = max_lists
        self.plans_per_list = plans_per_list
        self.plans: dict[tuple, list[Plan]] = {}

    def clear(self) -> None:
        self.plans.clear()

    def find(self, lists: list[list[torch.Tensor]], amsgrad: bool, tuning: Tuning) -> Plan:
        """The cached plan for these tensors, or a new one (checked tensor by tensor): reused as it is when every
        tensor is where and as it was, pointed at the new gradients when only they moved, else built anew."""
        flat = [*itertools.chain.from_iterable(lists)]
        key = (len(lists[0]), amsgrad, tuning, flat[0].data_ptr(), flat[0].device)
        plans = self.plans.get(key)
        if plans is not None:
            for position, plan in enumerate(plans):
                if fits(flat, plan, gradients_too=True):
                    plans.insert(0, plans.pop(position))
                    return plan
            for position, plan in enumerate(plans):
                if (
                    not plan.captured
                    and not capturing(flat[0].device)
                    and fits(flat, plan, gradients_too=False)
                    and list(map(_DTYPE, lists[1])) == list(map(_DTYPE, lists[0]))  # else a new plan names the grad
                ):
                    point_at_gradients(plan, lists[0], lists[1])
                    plans.insert(0, plans.pop(position))
                    return plan
        plan = build_plan(lists, amsgrad, tuning)
        if plans is None:
            if len(self.plans) >= self.max_lists:
                self.plans.pop(next(iter(self.plans)))
            plans = self.plans[key] = []
        plans.insert(0, plan)
        del plans[self.plans_per_list :]
        return plan


PLAN_CACHE = PlanCache()
"""The plans of :func:`radam.fused.fused_radam` (``radam.RAdam`` keeps one per fused param group instead:
:mod:`radam.fused.group_step`)."""
CAPTURED: list[Plan] = []
"""The plans that a CUDA graph has recorded, whoever built them. The graph reads their device tensors at every
replay, and nothing says when the graph is gone, so they are kept for the life of the process."""


def keep_for_graphs(plan: Plan) -> None:
    """Mark ``plan`` as recorded by a CUDA graph: never rewritten again, and kept alive (:data:`CAPTURED`)."""
    plan.captured = True
    CAPTURED.append(plan)
