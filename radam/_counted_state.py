"""Optimizer state that counts its own changes.

``RAdam.state`` is a :class:`CountedState`: a ``defaultdict`` of :class:`ParamState` dicts in which every change that
can replace, add or delete an entry (``state[p] = ...``, ``state[p]["exp_avg"] = ...``, ``del``, ``pop``, ``clear``,
``update``, ``setdefault``, ``|=``) advances one process-wide counter, :func:`changes`. A cached fused step
(``radam.fused.group_step``) that saw the counter at some value knows, if it still has that value, that no state entry
of any optimizer was replaced since, without looking at each parameter's entries: a test of one integer instead of
a few thousand dictionary look-ups per step. Reading entries and changing tensors in place do not count.

Not counted: changes that bypass the subclass (``dict.update(state[p], ...)``, ``dict.__setitem__``), and anything
done to a plain dict that user code puts in (``state[p] = {}``, ``state[p] = state[p].copy()``) -- which is why the
fused step trusts the count only while every parameter's state is a :class:`ParamState`.

Everything else is a plain ``defaultdict`` of dicts, with two differences: ``state_dict()`` hands out each
parameter's state as a plain dict (a shallow copy, so that ``torch.load(weights_only=True)`` reads a saved one;
state-dict post-hooks still see the :class:`ParamState`), and ``load_state_dict`` re-wraps what it loads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["CountedState", "ParamState", "changes"]

_counter = [0]
_MUTATORS = ("__setitem__", "__delitem__", "__ior__", "clear", "pop", "popitem", "setdefault", "update")


def changes() -> int:
    """How many changes :class:`CountedState` and :class:`ParamState` objects have seen in this process."""
    return _counter[0]


def _counted(method: Callable[..., Any]) -> Callable[..., Any]:
    def counted(self: dict, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:  # after the change: whoever reads the count afterwards also sees the change
            _counter[0] += 1

    counted.__name__ = method.__name__
    counted.__doc__ = method.__doc__
    return counted


class ParamState(dict):
    """The state of one parameter: a dict whose changes are counted (:func:`changes`)."""


class CountedState(defaultdict):
    """An optimizer's ``state``: parameter -> :class:`ParamState`, created on first access; changes are counted."""

    def __init__(self, default_factory: Callable[[], Any] | None = ParamState, *args: Any, **kwargs: Any) -> None:
        super().__init__(default_factory, *args, **kwargs)  # the signature of defaultdict, which copy() relies on

    @classmethod
    def wrap(cls, state: dict[Any, Any]) -> CountedState:
        """A counted copy of ``state``, whose per-parameter dicts become :class:`ParamState` copies."""
        counted = cls()
        for key, value in state.items():
            counted[key] = ParamState(value) if type(value) is dict else value
        return counted


for _name in _MUTATORS:
    setattr(ParamState, _name, _counted(getattr(dict, _name)))
    setattr(CountedState, _name, _counted(getattr(defaultdict, _name)))
