"""A state dict saved by an earlier version of the package (commit 7b3f117, ``tests/data/``) still loads, with
``torch.load(..., weights_only=True)``, and the optimizer continues exactly as that version did.

The fixture holds two groups (the defaults with a complex and a 0-dim parameter; amsgrad, threshold 4, the exact
rectifier, degenerate "skip" and decoupled decay), saved after 7 steps, and the parameters that version reached
5 steps later with the gradients below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_state_dict_fixture import optimizer as _optimizer  # noqa: E402  (the script that made the fixture)
from make_state_dict_fixture import steps  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "radam_state_dict_7b3f117.pt"


def test_a_state_dict_saved_by_the_earlier_version_loads_and_continues_bit_for_bit():
    saved = torch.load(FIXTURE, weights_only=True)
    params = [p.clone() for p in saved["params"]]
    optimizer = _optimizer(params)
    optimizer.load_state_dict(saved["state_dict"])
    steps(optimizer, params, 7, 12)
    for p, expected in zip(params, saved["params_after_5_more_steps"]):
        assert torch.equal(p, expected)


def test_todays_state_dict_has_the_saved_layout():
    """What this version saves has the keys and types of what the earlier one saved, so it loads there too."""
    saved = torch.load(FIXTURE, weights_only=True)
    params = [p.clone() for p in saved["params"]]
    optimizer = _optimizer(params)
    optimizer.load_state_dict(saved["state_dict"])
    ours = optimizer.state_dict()
    theirs = saved["state_dict"]
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for key, entry in theirs["state"].items():
        assert ours["state"][key].keys() == entry.keys()
        for name, value in entry.items():
            assert ours["state"][key][name].dtype == value.dtype and torch.equal(ours["state"][key][name], value)
