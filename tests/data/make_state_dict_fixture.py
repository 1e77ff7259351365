"""Made tests/data/radam_state_dict_7b3f117.pt: run from a checkout of commit 7b3f117 with the path to write.

tests/test_state_dict_fixture.py imports ``params``, ``grads`` and ``optimizer`` from here, so that the test
continues the same optimizer on the same gradients.
"""

import copy
import subprocess
import sys

import torch

import radam


def params():
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(3, 2, generator=gen, dtype=torch.float64),
        torch.randn((), generator=gen, dtype=torch.float64),
        torch.randn(4, generator=gen, dtype=torch.complex128),
        torch.randn(5, generator=gen, dtype=torch.float64),
    ]


def grads(step, ps):
    """The gradients of step ``step`` for the parameters ``ps`` (seeded by the step alone)."""
    gen = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in ps]


def optimizer(ps):
    return radam.RAdam(
        [
            {"params": ps[:3]},
            {
                "params": ps[3:],
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


def steps(opt, ps, first, last):
    """Steps ``first`` to ``last - 1`` of ``opt`` on ``ps``, with the gradients of :func:`grads`."""
    for t in range(first, last):
        for p, g in zip(ps, grads(t, ps)):
            p.grad = g
        opt.step()


if __name__ == "__main__":
    ps = params()
    opt = optimizer(ps)
    steps(opt, ps, 0, 7)
    saved = {"state_dict": copy.deepcopy(opt.state_dict()), "params": [p.clone() for p in ps]}
    steps(opt, ps, 7, 12)
    saved["params_after_5_more_steps"] = [p.clone() for p in ps]
    saved["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    torch.save(saved, sys.argv[1])
