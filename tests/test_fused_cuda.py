"""The fused step on a GPU: every option against the single-tensor path, through the optimizer, and under CUDA graphs.

These tests need a CUDA GPU and Triton, and skip otherwise (CPU CI runs the same kernel under Triton's interpreter
in ``test_fused.py``).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from test_fused_reference import CONFIGS, OPTIONS, make_state, random_grads, reference_step

import radam
from radam import fused

HAS_TRITON = importlib.util.find_spec("triton") is not None
pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and HAS_TRITON), reason="needs a CUDA GPU and Triton (fused kernel)"
)

STEPS = 24
# Full and partial blocks (BLOCK_SIZE = 1024), a 0-d tensor, a 2-D tensor, one large enough for many blocks.
SHAPES = [(3, 700), (4096,), (), (1, 5), (257, 1031)]


def assert_close_scaled(a, b, rtol=1e-6):
    """Within ``rtol`` element-wise, near-zero elements measured against the tensor's largest element."""
    scale = float(b.abs().max()) if b.numel() else 0.0
    torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * scale)


def optimizer_pair(config, shapes=SHAPES, dtype=torch.float32, capturable=False, lr=OPTIONS["lr"]):
    o = {**OPTIONS, **config}
    torch.manual_seed(0)
    params = [torch.randn(s, device="cuda", dtype=dtype) for s in shapes]
    fused_params = [p.clone().requires_grad_() for p in params]
    single_params = [p.clone().requires_grad_() for p in params]
    kwargs = dict(
        betas=(o["beta1"], o["beta2"]),
        eps=o["eps"],
        weight_decay=o["weight_decay"],
        decoupled_weight_decay=o["decoupled_weight_decay"],
        degenerate=o["degenerate"],
        threshold=o["threshold"],
        rectifier=o["rectifier"],
        amsgrad=o["amsgrad"],
        maximize=o["maximize"],
    )
    fused_opt = radam.RAdam(fused_params, lr=lr, fused=True, capturable=capturable, **kwargs)
    single_opt = radam.RAdam(single_params, lr=float(lr), foreach=False, **kwargs)
    return fused_params, fused_opt, single_params, single_opt


def assert_optimizers_agree(fused_params, fused_opt, single_params, single_opt, rtol=1e-6):
    for p, q in zip(fused_params, single_params):
        assert_close_scaled(p.detach(), q.detach(), rtol)
        fs, ss = fused_opt.state[p], single_opt.state[q]
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if key in ss:
                assert_close_scaled(fs[key], ss[key], rtol)
        assert float(fs["step"]) == float(ss["step"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fused_optimizer_matches_single_tensor_path(name):
    """radam.RAdam(fused=True) against radam.RAdam(foreach=False): every option, 24 steps across the threshold."""
    fused_params, fused_opt, single_params, single_opt = optimizer_pair(CONFIGS[name])
    generator = torch.Generator(device="cuda").manual_seed(1)
    for _ in range(STEPS):
        for p, q in zip(fused_params, single_params):
            g = torch.randn(p.shape, device="cuda", generator=generator)
            p.grad, q.grad = g.clone(), g.clone()
        fused_opt.step()
        single_opt.step()
        assert_optimizers_agree(fused_params, fused_opt, single_params, single_opt)


@pytest.mark.parametrize("name", ["default", "amsgrad-exact-skip", "decoupled-skip", "maximize"])
def test_fused_step_under_cuda_graph_replay(name):
    """Capture one fused step (capturable, tensor lr) in a CUDA graph and replay it with new gradients and lrs."""
    lr = torch.tensor(OPTIONS["lr"], device="cuda")
    fused_params, fused_opt, single_params, single_opt = optimizer_pair(CONFIGS[name], capturable=True, lr=lr)
    static_grads = [torch.zeros_like(p) for p in fused_params]
    for p, g in zip(fused_params, static_grads):
        p.grad = g
    generator = torch.Generator(device="cuda").manual_seed(2)

    def new_grads():
        for g, q in zip(static_grads, single_params):
            g.copy_(torch.randn(g.shape, device="cuda", generator=generator))
            q.grad = g.clone()

    new_grads()  # one eager step compiles the kernel and builds the plan, outside the capture
    fused_opt.step()
    single_opt.step()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream):
        with torch.cuda.graph(graph):
            fused_opt.step()
    torch.cuda.current_stream().wait_stream(stream)
    assert_optimizers_agree(fused_params, fused_opt, single_params, single_opt)  # capture ran nothing
    for step in range(STEPS):
        new_grads()
        if step == 10:
            lr.fill_(3e-3)  # the graph reads the lr tensor at replay
            for group in single_opt.param_groups:
                group["lr"] = 3e-3
        graph.replay()
        single_opt.step()
        assert_optimizers_agree(fused_params, fused_opt, single_params, single_opt)


def test_optimizer_captured_with_gradients_that_moved_just_before():
    """The optimizer's cached fused step, captured right after the gradients were re-allocated: the capture builds
    a new plan instead of rewriting the cached one, and the graph replays correctly; an eager step with gradients
    elsewhere afterwards leaves the graph's plan alone."""
    lr = torch.tensor(OPTIONS["lr"], device="cuda")
    fused_params, fused_opt, single_params, single_opt = optimizer_pair(CONFIGS["default"], capturable=True, lr=lr)
    generator = torch.Generator(device="cuda").manual_seed(5)
    for p, q in zip(fused_params, single_params):
        g = torch.randn(p.shape, device="cuda", generator=generator)
        p.grad, q.grad = g.clone(), g.clone()
    fused_opt.step()
    single_opt.step()
    static_grads = [torch.zeros_like(p) for p in fused_params]  # new addresses, first seen inside the capture
    for p, g in zip(fused_params, static_grads):
        p.grad = g
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream):
        with torch.cuda.graph(graph):
            fused_opt.step()
    torch.cuda.current_stream().wait_stream(stream)
    for _ in range(4):
        for g, q in zip(static_grads, single_params):
            g.copy_(torch.randn(g.shape, device="cuda", generator=generator))
            q.grad = g.clone()
        graph.replay()
        single_opt.step()
        assert_optimizers_agree(fused_params, fused_opt, single_params, single_opt)
    for p, q in zip(fused_params, single_params):  # an eager step with gradients elsewhere
        g = torch.randn(p.shape, device="cuda", generator=generator)
        p.grad, q.grad = g.clone(), g.clone()
    fused_opt.step()
    single_opt.step()
    assert_optimizers_agree(fused_params, fused_opt, single_params, single_opt)
    for g, q in zip(static_grads, single_params):  # the graph still reads the gradients it was captured with
        g.copy_(torch.randn(g.shape, device="cuda", generator=generator))
        q.grad = g.clone()
    graph.replay()
    single_opt.step()
    assert_optimizers_agree(fused_params, fused_opt, single_params, single_opt)


def test_plan_built_during_capture():
    """Gradients first seen during capture: the plan is built and copied to the device inside the graph."""
    state = make_state([(100,), (5000,)], device="cuda")
    grads = [torch.randn(100, device="cuda"), torch.randn(5000, device="cuda")]
    reference = [[t.clone() for t in lst] for lst in state]
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        with torch.cuda.graph(graph):
            fused.fused_radam(state[0], grads, *state[1:], capturable=True, **OPTIONS)
    torch.cuda.current_stream().wait_stream(stream)
    for _ in range(8):
        graph.replay()
        p, m, v, vmax, s = reference
        reference_step(p, [g.clone() for g in grads], m, v, vmax, s)
    torch.cuda.synchronize()
    for a, b in zip(state[0] + state[4], reference[0] + reference[4]):
        assert_close_scaled(a, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_params(dtype):
    """bf16/fp16 params with float32 state: each step equals the float32 reference step rounded once."""
    params, exp_avgs, exp_avg_sqs, max_sqs, steps = make_state(
        SHAPES, dtype=dtype, device="cuda", state_dtype=torch.float32, amsgrad=True
    )
    generator = torch.Generator().manual_seed(3)
    options = dict(weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True)
    for _ in range(STEPS):
        grads = random_grads(params, generator)
        reference = [[t.float().clone() for t in lst] for lst in (params, exp_avgs, exp_avg_sqs, max_sqs, steps)]
        fused.fused_radam(
            params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, capturable=False, **{**OPTIONS, **options}
        )
        p, m, v, vmax, s = reference
        reference_step(p, [g.float() for g in grads], m, v, vmax, s, **options)
        for a, b in zip(exp_avgs + exp_avg_sqs + max_sqs, m + v + vmax):
            assert_close_scaled(a, b)
        for a, b in zip(params, p):
            # one rounding of nearly the same float32 value: equal, or one unit apart at a rounding boundary
            torch.testing.assert_close(a.float(), b.to(dtype).float(), rtol=2**-7, atol=0)


def test_many_programs_and_unequal_steps():
    """300 tensors (over 1000 programs) at different step counts: every count advances by exactly one per step."""
    shapes = [(1000 + 37 * i,) for i in range(300)]
    state = make_state(shapes, device="cuda", seed=4)
    for i, s in enumerate(state[4]):
        s.fill_(float(i % 9))
    reference = [[t.clone() for t in lst] for lst in state]
    generator = torch.Generator().manual_seed(5)
    for _ in range(12):
        grads = random_grads(state[0], generator)
        fused.fused_radam(state[0], grads, *state[1:], capturable=False, **OPTIONS)
        p, m, v, vmax, s = reference
        reference_step(p, [g.clone() for g in grads], m, v, vmax, s)
    assert [float(s) for s in state[4]] == [float(i % 9 + 12) for i in range(300)]
    for a, b in zip(state[0] + state[1] + state[2], reference[0] + reference[1] + reference[2]):
        assert_close_scaled(a, b)


def test_float64_params_carry_float64_scalars():
    """float64 params: arithmetic and scalars in float64 (beta, lr, eps reach the kernel unrounded)."""
    config = dict(weight_decay=0.1, rectifier="exact", amsgrad=True, beta2=0.9995)
    state = make_state(SHAPES, dtype=torch.float64, device="cuda", amsgrad=True, seed=6)
    reference = [[t.clone() for t in lst] for lst in state]
    generator = torch.Generator().manual_seed(7)
    for _ in range(STEPS):
        grads = random_grads(state[0], generator)
        fused.fused_radam(state[0], grads, *state[1:], capturable=False, **{**OPTIONS, **config})
        p, m, v, vmax, s = reference
        reference_step(p, [g.clone() for g in grads], m, v, vmax, s, **config)
    for a, b in zip(state[0] + state[1] + state[2], reference[0] + reference[1] + reference[2]):
        assert_close_scaled(a, b, rtol=1e-12)
