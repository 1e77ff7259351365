"""radam._counted_state: RAdam.state counts every change that can replace an entry, and stays a drop-in for
torch.optim's defaultdict of dicts (plain dicts in state_dict(), pickling, copying, loading)."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

import radam
from radam._counted_state import CountedState, ParamState, changes

CHANGES = {
    "setitem": lambda s, p: s.__setitem__(p, {}),
    "entry setitem": lambda s, p: s[p].__setitem__("exp_avg", torch.zeros(2)),
    "delitem": lambda s, p: s.__delitem__(p),
    "entry delitem": lambda s, p: s[p].__delitem__("step"),
    "pop": lambda s, p: s.pop(p),
    "entry pop": lambda s, p: s[p].pop("step"),
    "popitem": lambda s, p: s.popitem(),
    "entry popitem": lambda s, p: s[p].popitem(),
    "clear": lambda s, p: s.clear(),
    "entry clear": lambda s, p: s[p].clear(),
    "update": lambda s, p: s.update({p: {}}),
    "entry update": lambda s, p: s[p].update(step=torch.ones(())),
    "setdefault": lambda s, p: s.setdefault(torch.zeros(1), {}),
    "entry setdefault": lambda s, p: s[p].setdefault("new", 1),
    "ior": lambda s, p: s.__ior__({p: {}}),
    "entry ior": lambda s, p: s[p].__ior__({"step": torch.ones(())}),
    "missing key": lambda s, p: s[torch.zeros(1)],
}


def _stepped_optimizer():
    p = torch.zeros(2, requires_grad=True)
    optimizer = radam.RAdam([p])
    p.grad = torch.ones(2)
    optimizer.step()
    return p, optimizer


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_change_is_counted(change):
    p, optimizer = _stepped_optimizer()
    before = changes()
    change(optimizer.state, p)
    assert changes() > before


def test_reads_and_in_place_tensor_updates_are_not_counted():
    p, optimizer = _stepped_optimizer()
    before = changes()
    state = optimizer.state[p]
    _ = state["exp_avg"], state.get("step"), list(state.items()), p in optimizer.state, len(optimizer.state)
    state["exp_avg"].add_(1.0)
    optimizer.step()  # a later step only updates tensors in place
    assert changes() == before


def test_state_stays_counted_through_load_pickle_and_copy():
    p, optimizer = _stepped_optimizer()
    assert type(optimizer.state) is CountedState and type(optimizer.state[p]) is ParamState
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)  # plain dicts: a weights-only load reads them
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert all(type(value) is dict for value in loaded["state"].values())
    other = radam.RAdam([p])
    other.load_state_dict(loaded)
    for clone in (other, copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        assert type(clone.state) is CountedState
        assert all(type(value) is ParamState for value in clone.state.values())
    copied = optimizer.state.copy()
    assert type(copied) is CountedState and copied[p] is optimizer.state[p]
    assert copy.copy(optimizer).state is optimizer.state  # a shallow copy shares the state, as in torch.optim
    torch.testing.assert_close(other.state[p]["exp_avg"], optimizer.state[p]["exp_avg"], rtol=0, atol=0)
