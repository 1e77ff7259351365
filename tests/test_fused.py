"""The fused step without a GPU: its error messages, its maths, and the kernel itself under Triton's interpreter.

Under ``TRITON_INTERPRET=1`` the very kernel that runs on the GPU (same pointer table, block table, atomics) runs on
CPU tensors, one program after another, with numpy. Those tests need Triton installed and skip otherwise.
"""

from __future__ import annotations

import collections
import copy
import importlib.metadata
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_fused_reference import COMBINED_CONFIGS, OPTIONS, make_state, random_grads, reference_step

from radam import fused, theory
from radam.fused import cache as fused_cache
from radam.fused import plan as fused_plan
from radam.fused import series as fused_series
from radam.fused import tuning as fused_tuning

HAS_TRITON = importlib.util.find_spec("triton") is not None
# The older Triton that torch 2.8 and 2.9 bring (3.4, 3.5) fails inside its interpreter with numpy 2.4, and its PTX
# flushes float32 subnormals in division and square root (libdevice's ftz): these tests are checked with Triton 3.9.
TRITON_VERSION = tuple(int(part) for part in importlib.metadata.version("triton").split(".")[:2]) if HAS_TRITON else ()
needs_triton = pytest.mark.skipif(
    TRITON_VERSION < (3, 9),
    reason="the interpreter and PTX tests need Triton >= 3.9 "
    f"(installed: {'.'.join(map(str, TRITON_VERSION)) or 'none'})",
)

STEPS = 20
SHAPES = [(4100,), (3, 7)]  # a full block and a partial one (blocks of 4096 here), and a partial block: 3 in all


@pytest.fixture
def interpreter(monkeypatch):
    """Triton's interpreter, with blocks of 4096 elements (fewer programs to interpret; same kernel logic)."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(fused_tuning, "DEFAULT_TUNING", fused.Tuning(block_size=4096))


def run_fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, max_programs=2, **options):
    """The fused step with two programs: each loops over several blocks (the interpreter runs them in turn)."""
    o = {**OPTIONS, **options}
    fused.fused_radam(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, capturable=False, max_programs=max_programs, **o
    )


def assert_same_state(fused_state, reference_state, rtol, atol=0.0):
    """Element-wise within ``rtol`` of the reference, where elements near zero get ``rtol`` times the tensor's scale.

    A parameter that an update brings close to zero has a large relative error from one rounding of the update, so
    the comparison is relative to each tensor's largest element there (torch's CPU square root, which the reference
    uses on the CPU, is not correctly rounded, so the last bit differs now and then). The tensors as wholes must
    agree far tighter: ||fused - reference|| <= rtol / 10 ||reference||.
    """
    names = ["param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    for name, fused_list, reference_list in zip(names, fused_state, reference_state):
        for i, (a, b) in enumerate(zip(fused_list, reference_list)):
            scale = float(b.abs().max()) if b.numel() else 0.0
            torch.testing.assert_close(
                a, b, rtol=rtol, atol=max(atol, rtol * scale), msg=lambda m, name=name, i=i: f"{name} {i}: {m}"
            )
            assert float(torch.linalg.vector_norm(a - b)) <= rtol / 10 * float(torch.linalg.vector_norm(b)), name


def check_against_reference(config, shapes=SHAPES, dtype=torch.float32, steps=STEPS, rtol=1e-6, atol=0.0, seed=0):
    state = make_state(shapes, dtype=dtype, amsgrad=config.get("amsgrad", False), seed=seed)
    reference = [[t.clone() for t in lst] for lst in state]
    generator = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        grads = random_grads(state[0], generator, scale=1.0 + step)
        grads_before = [g.clone() for g in grads]
        params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps = state
        run_fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, **config)
        p, m, v, vmax, s = reference
        reference_step(p, [g.clone() for g in grads], m, v, vmax, s, **config)
        assert all(torch.equal(g, h) for g, h in zip(grads, grads_before)), "the fused step changed a gradient"
        assert_same_state(state, reference, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- without Triton


def test_import_does_not_load_triton():
    code = "import sys, radam, radam.fused; sys.exit('triton' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cpu_tensors_are_refused_with_a_reason(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="Triton|CUDA"):
        fused.check_fused_supported([torch.zeros(3)])


def test_unsupported_dtype_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    if not HAS_TRITON:
        with pytest.raises(RuntimeError, match="needs Triton"):
            fused.check_fused_supported([torch.zeros(3)])
        return
    fused.check_fused_supported([torch.zeros(3), torch.zeros(2, dtype=torch.bfloat16)])
    with pytest.raises(RuntimeError, match="int64"):
        fused.check_fused_supported([torch.zeros(3, dtype=torch.int64)])


def test_missing_triton_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` raise ImportError
    with pytest.raises(RuntimeError, match="needs Triton"):
        fused.check_fused_supported([torch.zeros(3)])


class _PinningRecorder:
    """Stands in for pinning and the host-to-device copy on a machine without CUDA: records what _to_device asks."""

    def __init__(self, monkeypatch, fail: bool = False):
        self.pinned = 0
        self.copies: list[tuple[str, bool]] = []
        recorder = self

        def pin_memory(tensor):
            if fail:
                raise RuntimeError("operation not permitted when stream is capturing")
            recorder.pinned += 1
            return tensor

        def to(tensor, device, non_blocking=False):
            recorder.copies.append((str(device), non_blocking))
            return tensor.clone()

        monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
        monkeypatch.setattr(torch.Tensor, "to", to)


@pytest.mark.parametrize("capturing", [False, True])
def test_plan_copy_is_pinned_and_asynchronous(monkeypatch, capturing):
    """A plan goes to the GPU from pinned memory, during a CUDA graph capture too (torch refuses to record a copy
    from pageable memory), and the host tensor is returned so the plan can keep it alive."""
    recorder = _PinningRecorder(monkeypatch)
    plan, host = fused_plan._to_device([1, 2, 3], torch.device("cuda", 0), capturing)
    assert recorder.pinned == 1
    assert recorder.copies == [("cuda:0", True)]
    assert host.tolist() == plan.tolist() == [1, 2, 3]


def test_plan_that_cannot_be_pinned_during_capture_says_what_to_do(monkeypatch):
    _PinningRecorder(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="eager step .* before capturing") as raised:
        fused_plan._to_device([1, 2, 3], torch.device("cuda", 0), capturing=True)
    assert "not permitted" in str(raised.value)
    with pytest.raises(RuntimeError, match="^operation not permitted"):  # outside a capture: torch's own error
        fused_plan._to_device([1, 2, 3], torch.device("cuda", 0), capturing=False)


def test_plan_on_the_cpu_is_not_copied(monkeypatch):
    recorder = _PinningRecorder(monkeypatch)
    plan, host = fused_plan._to_device([4, 5], torch.device("cpu"), capturing=False)
    assert plan is host and plan.tolist() == [4, 5]
    assert recorder.pinned == 0 and recorder.copies == []


def test_bad_option_values_are_refused():
    state = make_state([(3,)])
    grads = [torch.zeros(3)]
    with pytest.raises(ValueError, match="degenerate"):
        run_fused(state[0], grads, state[1], state[2], [], state[4], degenerate="adam")
    with pytest.raises(ValueError, match="rectifier"):
        run_fused(state[0], grads, state[1], state[2], [], state[4], rectifier="approx")


def test_log_q_series_matches_log_gamma():
    """The series the kernel evaluates for y >= 10 is log q(y) = log(y-1) + 2 log(Gamma(y-1/2)/Gamma(y)) (30 digits)."""
    import mpmath

    mpmath.mp.dps = 30
    y = np.concatenate([np.linspace(10.0, 40.0, 31), np.geomspace(40.0, 1e7, 30)])
    series = np.polynomial.polynomial.polyval(1.0 / y, np.concatenate([[0.0], fused.log_q_series(16)]))
    exact = np.array(
        [
            float(mpmath.log(v - 1) + 2 * (mpmath.loggamma(mpmath.mpf(v) - mpmath.mpf(0.5)) - mpmath.loggamma(v)))
            for v in y
        ]
    )
    np.testing.assert_allclose(series, exact, rtol=1e-13)


def test_exact_variance_by_shifting_matches_theory():
    """The kernel's float64 recipe for Var[psi] (shift x up to y >= 10, series, expm1 by Taylor), in numpy."""
    rho = np.concatenate([np.linspace(2.05, 30.0, 200), np.geomspace(30.0, 2e6, 200)])
    np.testing.assert_allclose(fused_series.variance_psi_by_shifting(rho), theory.variance_psi_exact(rho), rtol=1e-11)


def test_the_kernel_takes_its_constants_from_the_series_module():
    pytest.importorskip("triton")
    from radam.fused import kernel

    assert (kernel.N_SERIES.value, kernel.SERIES_FROM.value, kernel.EXPM1_TERMS.value) == (
        fused_series.N_SERIES,
        fused_series.SERIES_FROM,
        fused_series.EXPM1_TERMS,
    )


# ---------------------------------------------------------------- the kernel, under Triton's interpreter


@needs_triton
@pytest.mark.parametrize("name", list(COMBINED_CONFIGS))
def test_fused_matches_single_tensor_path(interpreter, name):
    """Every option, 20 steps through the switch at the threshold, float32: within 1e-6 relative, element-wise."""
    check_against_reference(COMBINED_CONFIGS[name])


@needs_triton
def test_fused_float64_is_exact_to_rounding(interpreter):
    check_against_reference(dict(weight_decay=0.1, rectifier="exact", amsgrad=True), dtype=torch.float64, rtol=1e-13)


@needs_triton
def test_fused_complex(interpreter):
    check_against_reference(
        dict(weight_decay=0.1, decoupled_weight_decay=True), shapes=[(4,), (2, 3)], dtype=torch.complex64, steps=8
    )


@needs_triton
def test_fused_tensor_lr_and_unequal_step_counts(interpreter):
    """lr as a 1-element tensor; tensors at different step counts (a parameter without grad skipped a step)."""
    state = make_state(SHAPES + [()], seed=3)
    state[4][0].fill_(30.0)
    state[4][1].fill_(4.0)  # crosses the threshold (step 6) on its 2nd step here, the fresh tensor 2 on its 6th
    reference = [[t.clone() for t in lst] for lst in state]
    generator = torch.Generator().manual_seed(4)
    for step in range(8):
        lr = torch.tensor(1e-2 * (1 + step))
        grads = random_grads(state[0], generator)
        run_fused(*state[:1], grads, *state[1:], lr=lr)
        p, m, v, vmax, s = reference
        reference_step(p, [g.clone() for g in grads], m, v, vmax, s, lr=float(lr))
        assert_same_state(state, reference, rtol=1e-6)
    assert [float(s) for s in state[4]] == [38.0, 12.0, 8.0]


@needs_triton
@pytest.mark.parametrize("dtype, n_steps", [(torch.bfloat16, STEPS), (torch.float16, 6)])
def test_fused_half_params_with_float32_state(interpreter, dtype, n_steps):
    """Half-precision params: arithmetic in float32 against float32 state, one rounding when stored.

    Checked step by step against the reference run in float32 from the fused step's own state (so the comparison
    isolates one step): the state within 1e-6, the parameter within one rounding of the half-precision type.
    """
    params, exp_avgs, exp_avg_sqs, max_sqs, steps = make_state(
        SHAPES, dtype=dtype, state_dtype=torch.float32, amsgrad=True
    )
    generator = torch.Generator().manual_seed(5)
    options = dict(weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True)
    for _ in range(n_steps):
        grads = random_grads(params, generator)
        reference = [[t.float().clone() for t in lst] for lst in (params, exp_avgs, exp_avg_sqs, max_sqs, steps)]
        run_fused(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, **options)
        p, m, v, vmax, s = reference
        reference_step(p, [g.float() for g in grads], m, v, vmax, s, **options)
        assert_same_state([exp_avgs, exp_avg_sqs, max_sqs, steps], [m, v, vmax, s], rtol=1e-6)
        for fused_param, reference_param in zip(params, p):
            assert fused_param.dtype == dtype
            torch.testing.assert_close(fused_param.float(), reference_param.to(dtype).float(), rtol=0, atol=0)


@needs_triton
def test_mixed_dtypes_and_misaligned_tensors(interpreter):
    """A list mixing float32 and float64 tensors (two launches), some starting at addresses that are not 16-byte
    aligned (views with an offset), takes the same steps as the reference."""
    fused_cache.PLAN_CACHE.clear()
    params = [
        torch.randn(7),
        torch.randn(4100, dtype=torch.float64)[1:],
        torch.randn(33, dtype=torch.float64),
        torch.randn(9000)[3:],
    ]
    storage = torch.zeros(9100)
    exp_avgs = [torch.zeros_like(p) for p in params]
    exp_avgs[3] = storage[1 : 1 + params[3].numel()]  # misaligned float32 state
    exp_avg_sqs = [torch.zeros_like(p) for p in params]
    steps = [torch.zeros(()) for _ in params]
    state = [params, exp_avgs, exp_avg_sqs, [], steps]
    reference = [[t.clone() for t in lst] for lst in state]
    generator = torch.Generator().manual_seed(6)
    for _ in range(8):
        grads = random_grads(params, generator)
        run_fused(params, grads, exp_avgs, exp_avg_sqs, [], steps, max_programs=None)  # a program per block
        p, m, v, vmax, s = reference
        reference_step(p, [g.clone() for g in grads], m, v, vmax, s)
        assert_same_state(state, reference, rtol=1e-6)
    (plans,) = fused_cache.PLAN_CACHE.plans.values()
    assert len(plans[0].launches) == 2 and not any(launch.aligned for launch in plans[0].launches)


@needs_triton
def test_plan_is_reused_refreshed_and_rebuilt(interpreter):
    """Same tensors: the plan is reused. New gradients (autograd re-allocates them): its gradient row is rewritten.
    New state tensors: a new plan. The steps stay right throughout."""
    fused_cache.PLAN_CACHE.clear()
    state = make_state([(10,), (5000,)], seed=7)
    reference = [[t.clone() for t in lst] for lst in state]
    generator = torch.Generator().manual_seed(8)

    def step(grads):
        run_fused(*state[:1], grads, *state[1:])
        p, m, v, vmax, s = reference
        reference_step(p, [g.clone() for g in grads], m, v, vmax, s)
        assert_same_state(state, reference, rtol=1e-6)

    grads = random_grads(state[0], generator)
    step(grads)
    step(grads)
    (plans,) = fused_cache.PLAN_CACHE.plans.values()
    assert len(plans) == 1
    plan = plans[0]
    for _ in range(2):
        step(random_grads(state[0], generator))  # new gradient tensors, at new addresses
        assert plans == [plan]
    misaligned = [torch.zeros(11)[1:], torch.zeros(5001)[1:]]
    for g, h in zip(misaligned, random_grads(state[0], generator)):
        g.copy_(h)
    step(misaligned)
    assert plans == [plan] and not any(launch.aligned for launch in plan.launches)
    state[1][0] = state[1][0].clone()  # a state tensor moved (say, load_state_dict): a new plan
    step(random_grads(state[0], generator))
    assert len(plans) == 2 and plans[1] is plan
    with pytest.raises(RuntimeError, match="grad 1"):
        run_fused(*state[:1], [torch.zeros(10), torch.zeros(5000, dtype=torch.float64)], *state[1:])


@needs_triton
def test_empty_and_scalar_tensors_advance_their_steps(interpreter):
    params, exp_avgs, exp_avg_sqs, _, steps = make_state([(0,), ()], seed=8)
    run_fused(params, [torch.zeros(0), torch.ones(())], exp_avgs, exp_avg_sqs, [], steps)
    params, exp_avgs, exp_avg_sqs, _, only_empty = make_state([(0,)], seed=8)
    run_fused(params, [torch.zeros(0)], exp_avgs, exp_avg_sqs, [], only_empty)
    assert [float(s) for s in steps + only_empty] == [1.0, 1.0, 1.0]


@needs_triton
def test_inconsistent_tensors_are_refused(interpreter):
    params, exp_avgs, exp_avg_sqs, _, steps = make_state([(4, 4)])
    with pytest.raises(RuntimeError, match="dense tensors with the same strides"):
        run_fused(params, [torch.zeros(4, 8)[:, ::2]], exp_avgs, exp_avg_sqs, [], steps)
    gradient = torch.ones(4, 4)
    run_fused(params, [gradient], exp_avgs, exp_avg_sqs, [], steps)  # builds and caches a plan
    with pytest.raises(RuntimeError, match="dense tensors with the same strides"):  # same address, not the plan's
        run_fused(params, [gradient.t()], exp_avgs, exp_avg_sqs, [], steps)
    with pytest.raises(RuntimeError, match="state of parameter 0"):
        run_fused(params, [torch.zeros(4, 4)], [torch.zeros(4, 4, dtype=torch.float64)], exp_avg_sqs, [], steps)
    with pytest.raises(RuntimeError, match="grad 0"):
        run_fused(params, [torch.zeros(4, 4, dtype=torch.float64)], exp_avgs, exp_avg_sqs, [], steps)


@needs_triton
def test_optimizer_fused_matches_optimizer_single_tensor(interpreter):
    """radam.RAdam(fused=True) steps like radam.RAdam(foreach=False): the optimizer's dispatch, state and dtypes."""
    import radam

    options = dict(degenerate="skip", weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True, rectifier="exact")
    generator = torch.Generator().manual_seed(9)
    params = [torch.randn(s, generator=generator) for s in SHAPES]
    fused_params = [p.clone().requires_grad_() for p in params]
    single_params = [p.clone().requires_grad_() for p in params]
    fused_opt = radam.RAdam(fused_params, lr=1e-2, fused=True, **options)
    single_opt = radam.RAdam(single_params, lr=1e-2, foreach=False, **options)
    for _ in range(STEPS):
        for p, q in zip(fused_params, single_params):
            g = torch.randn(p.shape, generator=generator)
            p.grad, q.grad = g.clone(), g.clone()
        fused_opt.step()
        single_opt.step()
        keys = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
        assert_same_state(
            [[p.detach() for p in fused_params]] + [[fused_opt.state[p][k] for p in fused_params] for k in keys],
            [[q.detach() for q in single_params]] + [[single_opt.state[q][k] for q in single_params] for k in keys],
            rtol=1e-6,
        )


def _reset_first_state(optimizer, params):
    optimizer.state[params[0]] = {}


def _replace_moment(optimizer, params):
    optimizer.state[params[1]]["exp_avg"] = optimizer.state[params[1]]["exp_avg"] * 0.5


def _replace_step_by_an_equal_one(optimizer, params):
    optimizer.state[params[1]]["step"] = optimizer.state[params[1]]["step"].clone()


def _replace_moment_through_none(optimizer, params):
    state = optimizer.state[params[1]]
    state["exp_avg"] = None  # the old tensor could be freed here, and its id given to the next one
    state["exp_avg"] = torch.zeros_like(params[1])


def _move_a_parameter(optimizer, params):
    params[0].data = params[0].data.clone()


def _give_a_moment_new_memory(optimizer, params):
    exp_avg = optimizer.state[params[1]]["exp_avg"]
    exp_avg.data = exp_avg.data * 0.5  # the same tensor object; its old memory is freed, still holding old values


def _give_a_gradient_new_memory(optimizer, params):
    params[1].grad.data = params[1].grad.data * 2.0  # the same gradient object, new memory (as Module._apply does)


def _replace_a_gradient_kept_alive(optimizer, params):
    keep = params[1].grad
    params[1].grad = keep * 2.0
    optimizer.kept = keep  # the old gradient stays alive: only identity tells the two apart


def _drop_a_gradient(optimizer, params):
    params[1].grad = None


def _add_a_parameter(optimizer, params):
    new = torch.linspace(-1.0, 1.0, 6).requires_grad_()
    new.grad = torch.full((6,), 0.5)
    optimizer.param_groups[0]["params"].append(new)  # in place: the same list, one longer
    params.append(new)


def _replace_a_parameter(optimizer, params):
    other = (params[0].detach() * 2.0).requires_grad_()  # the same shape, other memory, its own gradient
    other.grad = torch.full_like(other, 0.25)
    optimizer.param_groups[0]["params"][0] = other  # in place: the same list, the same length
    params[0] = other


def _swap_in_a_list_of_other_parameters(optimizer, params):
    others = [(p.detach() + 1.0).requires_grad_() for p in params]
    for other, p in zip(others, params):
        other.grad = p.grad * 0.5
    optimizer.param_groups[0]["params"] = list(others)  # another list, the same length
    params[:] = others


def _reset_all_state(optimizer, params):
    optimizer.state = collections.defaultdict(dict)  # a way to restart an optimizer's state


def _remove_a_parameter(optimizer, params):
    optimizer.param_groups[0]["params"].pop(0)  # in place: the same list, one shorter


def _replace_the_parameter_list(optimizer, params):
    group = optimizer.param_groups[0]
    group["params"] = list(group["params"])


def _change_an_option(optimizer, params):
    optimizer.param_groups[0]["betas"] = (0.8, 0.99)


def _change_the_learning_rate(optimizer, params):
    optimizer.param_groups[0]["lr"] = 3e-3


def _switch_to_the_exact_rectifier(optimizer, params):
    optimizer.param_groups[0]["rectifier"] = "exact"  # read at each launch; checked again since its value changed


def _switch_amsgrad_off(optimizer, params):
    optimizer.param_groups[0]["amsgrad"] = False  # the plan loses its max_exp_avg_sq row


def _reload_the_state(optimizer, params):
    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))


EDITS = [
    _reset_first_state,
    _replace_moment,
    _replace_step_by_an_equal_one,
    _replace_moment_through_none,
    _move_a_parameter,
    _give_a_moment_new_memory,
    _give_a_gradient_new_memory,
    _replace_a_gradient_kept_alive,
    _drop_a_gradient,
    _add_a_parameter,
    _replace_a_parameter,
    _swap_in_a_list_of_other_parameters,
    _reset_all_state,
    _remove_a_parameter,
    _replace_the_parameter_list,
    _change_an_option,
    _change_the_learning_rate,
    _switch_to_the_exact_rectifier,
    _switch_amsgrad_off,
    _reload_the_state,
]


PLAIN_ENTRIES = {
    "reset to {}": lambda state, p: state.__setitem__(p, {}),
    "copy()": lambda state, p: state.__setitem__(p, state[p].copy()),
    "dict | {}": lambda state, p: state.__setitem__(p, dict(state[p]) | {}),
}


@needs_triton
@pytest.mark.parametrize("gradients", ["new", "same"])
@pytest.mark.parametrize(
    "edit", EDITS + list(PLAIN_ENTRIES.values()), ids=[edit.__name__.strip("_") for edit in EDITS] + list(PLAIN_ENTRIES)
)
def test_cached_fused_step_sees_every_edit_between_steps(interpreter, edit, gradients):
    """The optimizer re-uses a fused group's lists and plan from step to step (radam.fused.group_step). Each edit a user
    can make between steps -- state reset or replaced, a parameter or a state tensor or a gradient given new memory,
    a gradient replaced or dropped, a parameter added or removed, an option changed, state reloaded, a parameter's
    state made a plain dict (whose later changes are not counted) -- is applied to a fused and a single-tensor
    optimizer alike, and they keep stepping alike. The gradients are new tensors at every step (as
    zero_grad(set_to_none=True) leaves them) or the same tensors, updated in place (as zero_grad(set_to_none=False)
    and gradient accumulation leave them; the cached step then watches them instead of reading them). Two steps
    after the edit, an entry of the edited state is replaced."""
    import radam

    generator = torch.Generator().manual_seed(10)
    shapes = [(5,), (4100,), (3, 7)]
    initial = [torch.randn(s, generator=generator) for s in shapes]
    runs = {}
    for name, flags in {"fused": dict(fused=True), "single": dict(foreach=False)}.items():
        params = [p.clone().requires_grad_() for p in initial]
        runs[name] = params, radam.RAdam(params, lr=1e-2, amsgrad=True, **flags)
    plain = edit in PLAIN_ENTRIES.values()
    for step in range(9):
        grads = [torch.randn(s, generator=generator) for s in shapes]
        for params, optimizer in runs.values():
            for p, g in zip(params, grads):
                if gradients == "new" or p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)
            if step == 4:
                edit(optimizer.state, params[1]) if plain else edit(optimizer, params)
            if step == 6:
                _replace_moment(optimizer, optimizer.param_groups[0]["params"])
            optimizer.step()
        (fused_params, fused_opt), (single_params, single_opt) = runs.values()
        for p, q in zip(fused_params, single_params):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-6, atol=1e-7)
            assert set(fused_opt.state[p]) == set(single_opt.state[q])
            for key in fused_opt.state[p]:
                torch.testing.assert_close(fused_opt.state[p][key], single_opt.state[q][key], rtol=1e-6, atol=1e-9)
    assert fused_opt._fused.steps[0].refresh(fused_opt.param_groups[0], fused_opt.state)  # cached again at the end


def _two_group_optimizer(**options):
    import radam

    first, second = torch.randn(6, requires_grad=True), torch.randn(4, 4, requires_grad=True)
    optimizer = radam.RAdam([{"params": [first]}, {"params": [second]}], lr=1e-2, fused=True, **options)
    return first, second, optimizer


def _new_gradients(*params):
    for p in params:
        p.grad = torch.ones_like(p)


def _assert_nothing_moved(step, first, second, optimizer):
    """Run ``step``; the parameters and every state tensor are as they were (even if ``step`` raises)."""
    before = copy.deepcopy([first.detach(), second.detach(), optimizer.state_dict()["state"]])
    try:
        step()
    finally:
        after = [first.detach(), second.detach(), optimizer.state_dict()["state"]]
        torch.testing.assert_close(after, before, rtol=0, atol=0)


@needs_triton
@pytest.mark.parametrize("first_step", [True, False], ids=["first step", "cached step"])
@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda p: setattr(p, "grad", p.grad.t()), RuntimeError, "dense tensors with the same strides"),  # same address
        (lambda p: setattr(p, "data", p.data[:2].clone()), RuntimeError, "grad 0 is"),  # its old memory released
        (lambda p: setattr(p, "grad", p.grad.to_sparse()), RuntimeError, "sparse gradients"),
    ],
    ids=["transposed gradient", "sliced parameter", "sparse gradient"],
)
def test_a_bad_second_group_is_refused_before_anything_moves(interpreter, first_step, edit, error, message):
    """A gradient or parameter the kernel cannot take, in the second of two fused groups, on the first step (state
    not yet created) or on a step that would re-use the cached plans: the step raises, naming the problem, and
    neither group's parameters nor state change -- not even the lazily created state of the first step."""
    first, second, optimizer = _two_group_optimizer(amsgrad=True)
    _new_gradients(first, second)
    if not first_step:
        optimizer.step()
    edit(second)  # the gradients stay the tensors of the step before
    with pytest.raises(error, match=message):
        _assert_nothing_moved(optimizer.step, first, second, optimizer)
    assert len(optimizer.state) == (0 if first_step else 2)
    _assert_nothing_moved(lambda: pytest.raises(error, optimizer.step), first, second, optimizer)


@needs_triton
@pytest.mark.parametrize(
    "lr, error, message",
    [
        (torch.tensor([1e-2, 1e-2]), ValueError, "1-element"),
        (torch.tensor(1e-2, device="meta"), RuntimeError, "lr is on meta"),  # neither the CPU nor the params' device
    ],
    ids=["two elements", "another device"],
)
def test_a_bad_tensor_lr_is_refused_on_a_cached_step(interpreter, lr, error, message):
    first, second, optimizer = _two_group_optimizer()
    _new_gradients(first, second)
    optimizer.step()
    optimizer.param_groups[1]["lr"] = lr
    with pytest.raises(error, match=message):
        _assert_nothing_moved(optimizer.step, first, second, optimizer)


def _steps_with_the_same_gradients(optimizer, *params, steps=3):
    """A few steps with the same gradient tensors: the cached step then watches them instead of reading them."""
    _new_gradients(*params)
    for _ in range(steps):
        optimizer.step()
    assert optimizer._fused.steps[1].grad_refs is not None  # watched


@needs_triton
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: setattr(p, "data", p.data.double()), "grad 0 is torch.float32"),  # a dtype change, as .double() does
        (lambda p: torch.utils.swap_tensors(p, p.detach().to("meta").requires_grad_()), "parameter 0 is on meta"),
        (lambda p: setattr(p, "data", p.data.t().contiguous().t()), "same strides"),  # a layout change, new memory
    ],
    ids=["dtype", "device", "layout"],
)
def test_a_parameter_moved_to_another_dtype_device_or_layout_is_seen(interpreter, edit, message):
    """A parameter given new memory of another dtype, device or layout (``module.to(...)``, ``.double()``,
    ``.to(memory_format=...)`` do it with ``p.data = ...``, or with ``torch.utils.swap_tensors`` when
    ``torch.__future__`` asks for it) while its gradient stays the same, watched tensor: the
    old memory is released, the cached step sees it and the full path refuses the step, naming the problem (the
    moments and the gradient no longer fit), before anything moves."""
    first, second, optimizer = _two_group_optimizer()
    _steps_with_the_same_gradients(optimizer, first, second)
    edit(second)
    with pytest.raises(RuntimeError, match=message):
        _assert_nothing_moved(optimizer.step, first, second, optimizer)


@needs_triton
def test_a_cached_step_is_for_its_own_group_and_state(interpreter):
    """A group's cached step does not describe another group dict or another state mapping, however alike."""
    first, second, optimizer = _two_group_optimizer()
    _steps_with_the_same_gradients(optimizer, first, second)
    cached, group = optimizer._fused.steps[1], optimizer.param_groups[1]
    assert cached.refresh(group, optimizer.state)
    assert not cached.refresh(dict(group), optimizer.state)
    assert not cached.refresh(group, type(optimizer.state).wrap(optimizer.state))


@needs_triton
def test_the_tuning_of_the_fused_steps_survives_loading_a_state_dict(interpreter):
    """The tuning a RAdam's fused steps are built with (radam.fused.Tuning, an argument, not a module global) is kept
    by load_state_dict, which forgets the cached steps themselves."""
    first, second, optimizer = _two_group_optimizer()
    optimizer._fused.tuning = fused.Tuning(block_size=16, max_programs=1)
    _new_gradients(first, second)
    optimizer.step()
    optimizer.load_state_dict(optimizer.state_dict())
    assert not optimizer._fused.steps and optimizer._fused.tuning.block_size == 16
    optimizer.step()
    plan = optimizer._fused.steps[1].plan
    assert plan.tuning.block_size == 16 and plan.launches[0].n_blocks == 1 and plan.launches[0].grid == (1,)


@needs_triton
def test_an_invalid_option_set_between_cached_steps_is_refused(interpreter):
    """The variant options of a cached group are checked again when their values change, before anything moves."""
    first, second, optimizer = _two_group_optimizer()
    _steps_with_the_same_gradients(optimizer, first, second)
    optimizer.param_groups[1]["threshold"] = 3.0  # below 4, where the paper's rectifier is not real
    with pytest.raises(ValueError, match="threshold"):
        _assert_nothing_moved(optimizer.step, first, second, optimizer)
    optimizer.param_groups[1]["rectifier"] = "exact"  # valid with a threshold of 3
    optimizer.step()
    assert float(optimizer.state[second]["step"]) == 4.0


@needs_triton
def test_a_non_contiguous_parameter_takes_gradients_of_its_own_layout_only(interpreter):
    """A dense parameter that is not contiguous (a permuted view): a new gradient with its strides is taken, and
    the step matches the single-tensor path; a contiguous one of the same shape, or one with other strides, is
    refused, naming the strides."""
    import radam

    base = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(11))
    fused_param, single_param = (base.clone().permute(2, 0, 1).requires_grad_() for _ in range(2))  # (4, 2, 3)
    fused_opt = radam.RAdam([fused_param], lr=1e-2, fused=True)
    single_opt = radam.RAdam([single_param], lr=1e-2, foreach=False)
    generator = torch.Generator().manual_seed(12)
    for _ in range(3):
        g = torch.randn(2, 3, 4, generator=generator).permute(2, 0, 1)  # new gradients with the parameter's strides
        fused_param.grad, single_param.grad = g.clone(memory_format=torch.preserve_format), g.clone()
        assert fused_param.grad.stride() == fused_param.stride() == (1, 12, 4)
        fused_opt.step()
        single_opt.step()
        torch.testing.assert_close(fused_param.detach(), single_param.detach(), rtol=1e-6, atol=1e-7)
    for wrong in (torch.ones(4, 2, 3), torch.ones(3, 2, 4).permute(2, 1, 0)):  # contiguous; other strides
        fused_param.grad = torch.ones(2, 3, 4).permute(2, 0, 1)
        fused_opt.step()  # cached again
        fused_param.grad = wrong  # the kernel would read it in the wrong order
        with pytest.raises(RuntimeError, match="same strides"):
            fused_opt.step()


@needs_triton
def test_a_parameter_re_viewed_on_its_own_memory_is_stepped_where_the_plan_points(interpreter):
    """Not seen (see radam.fused.group_step): a parameter re-viewed on its own memory (here its first half) while its
    gradient stays the same tensor. Nothing is read per parameter when nothing changed, so the step updates what the
    plan points at -- the whole of the memory the parameter still holds -- exactly as if the parameter had kept its
    shape. A new gradient tensor of the new shape is seen, and refused before anything moves."""
    first, second, optimizer = _two_group_optimizer()
    _steps_with_the_same_gradients(optimizer, first, second)
    whole = second.detach()  # the 4 x 4 parameter as the plan knows it
    reference = [t.clone() for t in (whole, optimizer.state[second]["exp_avg"], optimizer.state[second]["exp_avg_sq"])]
    step = optimizer.state[second]["step"].clone()
    second.data = second.data[:2]  # the first two rows: the same memory, the same address
    optimizer.step()
    p, m, v = reference
    reference_step([p], [torch.ones(4, 4)], [m], [v], [], [step], lr=1e-2)
    torch.testing.assert_close(whole, p, rtol=1e-6, atol=1e-7)  # all 16 elements, as for the 4 x 4 parameter
    second.grad = torch.ones(2, 4)
    with pytest.raises(RuntimeError, match=r"state of parameter 0 .* must be torch.float32 of shape \(2, 4\)"):
        _assert_nothing_moved(optimizer.step, first, second, optimizer)


@needs_triton
def test_cached_steps_hold_no_gradients_and_drop_removed_groups(interpreter):
    """After zero_grad(set_to_none=True) the old gradients are freed (the plan keeps only their addresses); a group
    removed from the optimizer releases its tensors; a scheduler changing betas every step keeps the plan."""
    import gc
    import weakref

    first, second, optimizer = _two_group_optimizer()
    _new_gradients(first, second)
    optimizer.step()
    optimizer.step()
    plan = optimizer._fused.steps[0].plan
    for beta1 in (0.85, 0.95):  # what OneCycleLR's cycle_momentum does
        optimizer.param_groups[0]["betas"] = (beta1, 0.999)
        optimizer.step()
    assert optimizer._fused.steps[0].plan is plan
    gradient = weakref.ref(first.grad)
    optimizer.zero_grad(set_to_none=True)
    gc.collect()
    assert gradient() is None
    removed = weakref.ref(second)
    del optimizer.param_groups[1], optimizer.state[second], second
    _new_gradients(first)
    optimizer.step()
    gc.collect()
    assert removed() is None and list(optimizer._fused.steps) == [0]


@needs_triton
@pytest.mark.parametrize("param_dtype, amsgrad, wide", [("float32", True, 5), ("bfloat16", False, 2)])
def test_kernel_compiles_for_hopper_with_wide_ieee_accesses(param_dtype, amsgrad, wide):
    """Compile the kernel for sm_90 (no GPU needed; Triton ships ptxas) and read its PTX: 16-byte loads of the
    float32 streams in full blocks, IEEE division and square root only, one atomic, no register spills."""
    import re

    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import ASTSource

    from radam.fused import kernel as _fused_kernel

    constexprs = dict(
        PARAM_DTYPE=getattr(tl, param_dtype),
        STATE_DTYPE=tl.float32,
        STEP_DTYPE=tl.float32,
        N_ROWS=6 if amsgrad else 5,
        AMSGRAD=amsgrad,
        MAXIMIZE=False,
        WEIGHT_DECAY=True,
        DECOUPLED=False,
        DEGENERATE_SGD=True,
        EXACT=amsgrad,
        LR_IS_TENSOR=False,
        ALIGNED=True,
        BLOCK=fused.BLOCK_SIZE,
        STEP_BLOCK=fused.STEP_BLOCK,
    )
    signature = {
        "plan": "*i64",
        "n_tensors": "i32",
        "n_blocks": "i32",
        "counter": "*i32",
        "series": "*fp64",
        "lr": "fp64",
        "lr_ptr": "*i32",
        "beta1": "fp64",
        "beta2": "fp64",
        "eps": "fp64",
        "weight_decay": "fp64",
        "threshold": "fp64",
        "variance_inf": "fp64",
        **{name: "constexpr" for name in constexprs},
    }
    aligned = {(i,): [["tt.divisibility", 16]] for i in (0, 3, 4)}  # torch's allocations are 16-byte aligned
    try:
        source = ASTSource(_fused_kernel.compiled_kernel(), signature, constexprs=constexprs, attrs=aligned)
    except TypeError as error:  # ASTSource is Triton's internal API and changes between versions
        pytest.skip(f"this Triton's ASTSource takes other arguments ({error}); checked with triton 3.9")
    kernel = triton.compile(
        source, target=GPUTarget("cuda", 90, 32), options={"num_warps": fused.NUM_WARPS, "enable_fp_fusion": False}
    )
    ptx = kernel.asm["ptx"]
    assert len(re.findall(r"ld\.global(\.\w+)*\.v4\.(b32|f32)", ptx)) == wide  # one per float32 stream
    assert "approx" not in ptx and "div.rn.f32" in ptx and "sqrt.rn.f32" in ptx
    assert ptx.count("atom.") == 1
    assert ".local" not in ptx  # no stack frame: nothing spilled to local memory
