"""CUDA-only checks (skipped on machines without a GPU): foreach by default, capturable under CUDA graphs,
CPU state dicts loaded into CUDA optimizers, and the fused dispatch when radam.fused is available."""

from __future__ import annotations

import copy

import pytest
import torch

import radam

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _params(device, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cpu = [
        torch.randn(5, 3, generator=gen, dtype=dtype),
        torch.randn(3, generator=gen, dtype=dtype),
        torch.randn((), generator=gen, dtype=dtype),
    ]
    return [p.to(device).requires_grad_() for p in cpu]


def _lockstep(opt_a, pa, opt_b, pb, steps=10, seed=1, tol=None):
    """Identical gradients to both; params and state equal after each step (within ``tol`` if given)."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for a, b in zip(pa, pb):
            g = torch.randn(a.shape, generator=gen, dtype=a.dtype).to(a.device)
            a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
        for a, b in zip(pa, pb):
            if tol is None:
                assert torch.equal(a, b)
            else:
                torch.testing.assert_close(b, a, **tol)
            for key in opt_a.state[a]:
                sa, sb = opt_a.state[a][key], opt_b.state[b][key]
                if tol is None:
                    assert torch.equal(sa, sb), key
                else:  # a capturable step counter lives on the GPU, the default one on the CPU
                    torch.testing.assert_close(sb.cpu().to(sa.dtype), sa.cpu(), **tol)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(foreach=False),
        dict(weight_decay=0.1, decoupled_weight_decay=True),
        dict(weight_decay=0.1, lr=torch.tensor(0.001)),
    ],
)
def test_cuda_default_paths_equal_torch(kwargs):
    pa, pb = _params("cuda"), _params("cuda")
    opt_a = torch.optim.RAdam(pa, **copy.deepcopy(kwargs))
    opt_b = radam.RAdam(pb, **copy.deepcopy(kwargs))
    _lockstep(opt_a, pa, opt_b, pb)


# capturable=True is compared with the default path, not with torch's capturable one: our capturable scalars are
# float64, torch's float32 (wrong branch for beta2 >= 0.9995; see tests/test_optimizer_parity.py). Tolerances allow
# for CUDA's pow differing from the host's in the last bit, which beta2 = 0.99999 amplifies in rho_t.
CAPTURABLE_TOL = dict(rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(weight_decay=0.1, lr=torch.tensor(0.001)),
        dict(betas=(0.9, 0.99999)),
        dict(betas=(0.9, 0.9999), rectifier="exact", degenerate="skip"),
    ],
)
def test_cuda_capturable_equals_the_default_path(kwargs, foreach):
    pa, pb = _params("cuda"), _params("cuda")
    opt_a = radam.RAdam(pa, foreach=False, **copy.deepcopy(kwargs))
    opt_b = radam.RAdam(pb, capturable=True, foreach=foreach, **copy.deepcopy(kwargs))
    _lockstep(opt_a, pa, opt_b, pb, tol=CAPTURABLE_TOL)


def test_cuda_defaults_to_foreach(monkeypatch):
    import radam.functional as F

    calls = []
    original = F._multi_tensor_radam
    monkeypatch.setattr(F, "_multi_tensor_radam", lambda *a, **k: (calls.append(1), original(*a, **k)))
    p = _params("cuda")
    opt = radam.RAdam(p)
    for q in p:
        q.grad = torch.ones_like(q)
    opt.step()
    assert calls == [1]


@pytest.mark.parametrize("capturable", [False, True])
def test_cpu_state_dict_into_cuda_optimizer(capturable):
    cpu = _params("cpu")
    opt_cpu = radam.RAdam(cpu, capturable=False)
    for _ in range(3):
        for p in cpu:
            p.grad = torch.ones_like(p)
        opt_cpu.step()
    sd = opt_cpu.state_dict()
    pa = [p.detach().cuda().requires_grad_() for p in cpu]
    pb = [p.detach().cuda().requires_grad_() for p in cpu]
    opt_a = torch.optim.RAdam(pa)  # the oracle: torch's default path (see CAPTURABLE_TOL for capturable)
    opt_b = radam.RAdam(pb, capturable=capturable)
    opt_a.load_state_dict(copy.deepcopy(sd))
    saved = copy.deepcopy(sd)
    # load_state_dict takes the saved groups' options, as torch's does: a state dict that says capturable
    if capturable:
        saved["param_groups"][0]["capturable"] = True
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["capturable"] is capturable
    for p in pb:
        assert opt_b.state[p]["step"].device.type == ("cuda" if capturable else "cpu")
        assert opt_b.state[p]["exp_avg"].device.type == "cuda"
    _lockstep(opt_a, pa, opt_b, pb, steps=6, tol=CAPTURABLE_TOL if capturable else None)


@pytest.mark.parametrize(
    "options",
    [
        {},
        dict(
            degenerate="skip",
            rectifier="exact",
            amsgrad=True,
            threshold=4.0,
            weight_decay=0.1,
            decoupled_weight_decay=True,
        ),
    ],
)
@pytest.mark.parametrize("foreach", [False, True])
def test_capturable_step_replays_in_a_cuda_graph(options, foreach):
    params = _params("cuda", torch.float32)
    twin = [p.detach().clone().requires_grad_() for p in params]
    opt = radam.RAdam(params, lr=0.01, capturable=True, foreach=foreach, **options)
    ref = radam.RAdam(twin, lr=0.01, capturable=True, foreach=foreach, **options)
    gen = torch.Generator().manual_seed(2)
    static_grads = [torch.zeros_like(p) for p in params]
    for p, g in zip(params, static_grads):
        p.grad = g

    def new_grads():
        grads = [torch.randn(p.shape, generator=gen).cuda() for p in params]
        for g, s in zip(grads, static_grads):
            s.copy_(g)
        for t, g in zip(twin, grads):
            t.grad = g.clone()

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # warm-up steps (state creation) outside the graph
            new_grads()
            opt.step()
            ref.step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        opt.step()
    for _ in range(8):  # steps 3..10 cross the threshold inside the replays
        new_grads()
        graph.replay()
        ref.step()
    torch.cuda.synchronize()
    for a, b in zip(params, twin):
        torch.testing.assert_close(a, b)


def test_fused_dispatch_on_cuda():
    try:
        import radam.fused  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="fused"):
            radam.RAdam(_params("cuda", torch.float32), fused=True)
        return
    pa, pb = _params("cuda", torch.float32), _params("cuda", torch.float32)
    opt_a = radam.RAdam(pa, lr=0.01, foreach=False)
    opt_b = radam.RAdam(pb, lr=0.01, fused=True)
    gen = torch.Generator().manual_seed(3)
    for _ in range(10):
        for a, b in zip(pa, pb):
            g = torch.randn(a.shape, generator=gen).cuda()
            a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    for a, b in zip(pa, pb):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
