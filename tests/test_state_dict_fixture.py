"""A state dict saved by an earlier version of the package (commit 7b3f117, ``tests/data/``) still loads, with
``torch.load(..., weights_only=True)``, and the optimizer continues exactly as that version did.

The fixture holds two groups (the defaults with a complex and a 0-dim parameter; amsgrad, threshold 4, the exact
rectifier, degenerate "skip" and decoupled decay), saved after 7 steps, and the parameters that version reached
5 steps later with the gradients below.
"""

from __future__ import annotations

from pathlib import Path

import torch

import radam

FIXTURE = Path(__file__).parent / "data" / "radam_state_dict_7b3f117.pt"


def _grads(step, params):
    gen = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]


def _optimizer(params):
    return radam.RAdam(
        [
            {"params": params[:3]},
            {
                "params": params[3:],
                "amsgrad": True,
                "threshold": 4.0,
                "rectifier": "exact",
                "degenerate": "skip",
                "weight_decay": 0.1,
                "decoupled_weight_decay": True,
                "lr": 0.05,
            },
        ],
        lr=0.01,
        betas=(0.9, 0.99),
    )


def test_a_state_dict_saved_by_the_earlier_version_loads_and_continues_bit_for_bit():
    saved = torch.load(FIXTURE, weights_only=True)
    params = [p.clone() for p in saved["params"]]
    optimizer = _optimizer(params)
    optimizer.load_state_dict(saved["state_dict"])
    for t in range(7, 12):
        for p, g in zip(params, _grads(t, params)):
            p.grad = g
        optimizer.step()
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
