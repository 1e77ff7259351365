"""radam.RAdam as a torch.optim optimizer: construction, errors, state, serialisation, hooks, schedulers.

One test (or more) per item of the drop-in checklist in shared/reference/optimizer-checklist.md, section 3.
"""

from __future__ import annotations

import copy
import inspect
import io
import pickle
import sys
import types
import warnings

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

import radam
from radam.optimizer import RAdam

NEW_OPTIONS = {"fused": None, "degenerate": "sgd", "threshold": 5.0, "rectifier": "paper", "amsgrad": False}


def _model(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).to(dtype)


def _data(dtype=torch.float64):
    gen = torch.Generator().manual_seed(123)
    return torch.randn(16, 3, generator=gen, dtype=dtype), torch.randn(16, 1, generator=gen, dtype=dtype)


def _closure(model, opt, x, y):
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    return closure


def _state_equal(sa, sb):
    assert set(sa) == set(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# --- Construction --------------------------------------------------------------------------------------------------


def test_is_a_torch_optimizer_with_torchs_signature_and_defaults():
    assert issubclass(RAdam, torch.optim.Optimizer)
    ours = inspect.signature(RAdam.__init__).parameters
    theirs = inspect.signature(torch.optim.RAdam.__init__).parameters
    for name, par in theirs.items():
        assert name in ours
        assert ours[name].default == par.default, name
        assert ours[name].kind == par.kind, name
    assert list(ours)[: len(theirs)] == list(theirs)  # same order, extras appended
    extras = {name: ours[name].default for name in ours if name not in theirs}
    assert extras == NEW_OPTIONS
    assert all(ours[name].kind is inspect.Parameter.KEYWORD_ONLY for name in extras)
    p = torch.zeros(2, requires_grad=True)
    assert RAdam([p]).defaults == {**torch.optim.RAdam([p]).defaults, **NEW_OPTIONS}


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1e-3),
        dict(lr=torch.tensor([1e-3, 1e-3])),
        dict(lr=torch.tensor(-1.0)),
        dict(eps=-1e-8),
        dict(betas=(1.0, 0.0)),
        dict(betas=(-0.1, 0.999)),
        dict(betas=(0.9, 1.0)),
        dict(betas=(0.9, -0.5)),
        dict(weight_decay=-1),
    ],
)
def test_bad_hyperparameters_raise_torchs_errors(kwargs):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError) as theirs:
        torch.optim.RAdam([p], **kwargs)
    with pytest.raises(ValueError) as ours:
        RAdam([p], **kwargs)
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value).startswith(("Invalid", "Tensor lr must be 1-element"))


def test_beta2_zero_is_accepted_and_never_adapts():
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = RAdam([p], lr=0.1, betas=(0.0, 0.0))
    for _ in range(8):
        p.grad = torch.ones_like(p)
        opt.step()
    torch.testing.assert_close(p.detach(), torch.full((2,), 1 - 0.8, dtype=torch.float64))  # 8 SGD steps


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        (dict(degenerate="foo"), "degenerate"),
        (dict(degenerate=True), "degenerate"),
        (dict(rectifier="bar"), "rectifier"),
        (dict(amsgrad="yes"), "amsgrad"),
        (dict(threshold="5"), "threshold"),
        (dict(threshold=float("nan")), "threshold"),
        (dict(threshold=3.9), "threshold"),
        (dict(threshold=1.99, rectifier="exact"), "threshold"),
    ],
)
def test_unknown_option_values_raise_naming_the_option(kwargs, option):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=option):
        RAdam([p], **kwargs)
    # ... also in a param group, before the group is added
    opt = RAdam([p])
    q = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=option):
        opt.add_param_group({"params": [q], **kwargs})
    assert len(opt.param_groups) == 1


def test_allowed_values_are_listed_in_the_message():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"'sgd', 'skip'"):
        RAdam([p], degenerate="foo")
    with pytest.raises(ValueError, match=r"'paper', 'exact'"):
        RAdam([p], rectifier="bar")
    RAdam([p], threshold=2.0, rectifier="exact")  # fine: adaptive only where rho_t > 2, where the variance is finite
    RAdam([p], threshold=4, rectifier="paper")


def test_flags_live_in_defaults_and_groups_never_on_self():
    p = torch.zeros(2, requires_grad=True)
    opt = RAdam([p], degenerate="skip", threshold=4.0, rectifier="exact", amsgrad=True, maximize=True)
    flags = [
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "decoupled_weight_decay",
        "foreach",
        "maximize",
        "capturable",
        "differentiable",
        *NEW_OPTIONS,
    ]
    for flag in flags:
        assert flag in opt.defaults and flag in opt.param_groups[0]
        assert flag not in vars(opt), flag
    assert opt.param_groups[0]["degenerate"] == "skip"
    assert opt.state_dict()["param_groups"][0]["threshold"] == 4.0


def test_shared_optimizer_errors():
    with pytest.raises(TypeError):
        RAdam(torch.zeros(2, requires_grad=True))  # a bare tensor, not an iterable of params
    p = torch.zeros(2, requires_grad=True)
    with pytest.warns(UserWarning):
        RAdam([p, p])
    with pytest.raises(ValueError):
        RAdam([{"params": [p]}, {"params": [p]}])


# --- State and step ------------------------------------------------------------------------------------------------


def test_lazy_state():
    w = torch.zeros(2, 3, 4, 5, requires_grad=True)
    w_cl = torch.zeros(2, 3, 4, 5).to(memory_format=torch.channels_last).requires_grad_()
    opt = RAdam([w, w_cl])
    assert len(opt.state) == 0
    w.grad, w_cl.grad = torch.ones_like(w), torch.ones_like(w_cl)
    opt.step()
    for p in (w, w_cl):
        state = opt.state[p]
        assert set(state) == {"step", "exp_avg", "exp_avg_sq"}
        assert state["step"].shape == () and state["step"].dtype == torch.float32 and state["step"].device.type == "cpu"
        assert float(state["step"]) == 1.0
    assert opt.state[w_cl]["exp_avg"].is_contiguous(memory_format=torch.channels_last)
    opt_ams = RAdam([w], amsgrad=True)
    opt_ams.step()
    assert set(opt_ams.state[w]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("degenerate", ["sgd", "skip"])
def test_params_without_grad_are_skipped_entirely(foreach, degenerate):
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(3, dtype=torch.float64, requires_grad=True)
    frozen = torch.ones(3, dtype=torch.float64, requires_grad=False)
    opt = RAdam(
        [a, b, frozen], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True, foreach=foreach, degenerate=degenerate
    )
    for _ in range(8):
        a.grad = torch.ones_like(a)
        opt.step()
    assert b not in opt.state and frozen not in opt.state
    assert torch.equal(b.detach(), torch.ones(3, dtype=torch.float64))
    assert torch.equal(frozen, torch.ones(3, dtype=torch.float64))
    assert float(opt.state[a]["step"]) == 8


@pytest.mark.parametrize("foreach", [False, True])
def test_sparse_grad_raises_and_changes_nothing(foreach):
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(3, dtype=torch.float64, requires_grad=True)
    c = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = RAdam([{"params": [a]}, {"params": [b, c]}], lr=0.1, foreach=foreach)
    a.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    before = copy.deepcopy(opt.state_dict())
    params_before = [p.detach().clone() for p in (a, b, c)]
    a.grad = torch.ones(3, dtype=torch.float64)
    b.grad = torch.ones(3, dtype=torch.float64)
    c.grad = torch.sparse_coo_tensor([[0]], torch.tensor([1.0], dtype=torch.float64), (3,), check_invariants=True)
    with pytest.raises(RuntimeError, match="RAdam does not support sparse gradients"):
        opt.step()
    after = opt.state_dict()
    assert before["param_groups"] == after["param_groups"]
    assert set(before["state"]) == set(after["state"]) == {0}  # no lazy state was created for b
    _state_equal(before["state"][0], after["state"][0])
    for p, p0 in zip((a, b, c), params_before):
        assert torch.equal(p.detach(), p0)


def test_invalid_option_set_on_a_group_is_caught_before_any_change():
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = RAdam([{"params": [a]}, {"params": [b]}], lr=0.1)
    opt.param_groups[1]["rectifier"] = "bogus"
    opt.param_groups[1]["lr"] = 0.1
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    with pytest.raises(ValueError, match="rectifier"):
        opt.step()
    assert len(opt.state) == 0 and torch.equal(a.detach(), torch.ones(3))
    opt.param_groups[1]["rectifier"] = "paper"
    opt.param_groups[1]["lr"] = torch.tensor([0.1, 0.2])
    with pytest.raises(ValueError, match="1-element"):
        opt.step()
    assert len(opt.state) == 0 and torch.equal(a.detach(), torch.ones(3))


def _two_groups_one_stepped(second_group_options):
    """An optimizer whose first group has taken a step and whose second group has ``second_group_options``."""
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = RAdam([{"params": [a]}, {"params": [b]}], lr=0.1)
    a.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    opt.param_groups[1].update(second_group_options)
    a.grad = torch.ones(3, dtype=torch.float64)
    b.grad = torch.ones(3, dtype=torch.float64)
    return opt, a, b


def _assert_step_raises_and_changes_nothing(opt, params, error, match):
    before = copy.deepcopy(opt.state_dict())
    params_before = [p.detach().clone() for p in params]
    with pytest.raises(error, match=match):
        opt.step()
    after = opt.state_dict()
    assert before["param_groups"] == after["param_groups"]
    assert set(before["state"]) == set(after["state"])  # no lazy state was created
    for k in before["state"]:
        _state_equal(before["state"][k], after["state"][k])
    for p, p0 in zip(params, params_before):
        assert torch.equal(p.detach(), p0)


@pytest.fixture
def fused_unavailable(monkeypatch):
    """radam.fused cannot be imported (as on a machine without CUDA or Triton), whatever this machine has."""
    monkeypatch.setitem(sys.modules, "radam.fused", None)


def test_a_fused_group_that_cannot_run_is_refused_before_any_change(fused_unavailable):
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="fused=True needs a CUDA device"):
        RAdam([{"params": [a]}, {"params": [b], "fused": True}], lr=0.1)  # a per-group flag, not only the default
    opt = RAdam([a], lr=0.1)
    for group in (
        {"params": [b], "fused": True},
        {"params": iter([b]), "fused": True},
        {"params": [("b", b)], "fused": True},
    ):
        with pytest.raises(RuntimeError, match="fused=True needs a CUDA device"):
            opt.add_param_group(group)
        assert len(opt.param_groups) == 1
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        opt.add_param_group({"params": [b], "fused": True, "foreach": True})
    with pytest.raises(RuntimeError, match="differentiable"):
        opt.add_param_group({"params": [b], "fused": True, "differentiable": True})
    assert len(opt.param_groups) == 1
    # set on a group after construction (or loaded with a state dict): caught before group 0 steps
    opt, a, b = _two_groups_one_stepped({"fused": True})
    _assert_step_raises_and_changes_nothing(opt, [a, b], RuntimeError, "fused=True needs a CUDA device")


def test_foreach_with_differentiable_in_one_group_is_refused_before_any_change():
    opt, a, b = _two_groups_one_stepped({"foreach": True, "differentiable": True})
    _assert_step_raises_and_changes_nothing(opt, [a, b], AssertionError, "autograd")


@pytest.mark.parametrize("foreach", [False, True])
def test_capturable_device_check_raises_before_any_change(foreach):
    """capturable=True needs each param and its step on one device of a capturable kind (the CPU included here)."""
    # a param on the meta device (not capturable)
    opt, a, b = _two_groups_one_stepped({"capturable": True, "foreach": foreach})
    meta = torch.zeros(3, device="meta", requires_grad=True)
    meta.grad = torch.zeros(3, device="meta")
    opt.add_param_group({"params": [meta], "capturable": True, "foreach": foreach})
    _assert_step_raises_and_changes_nothing(opt, [a, b], AssertionError, "capturable=True")
    # a param whose step counter sits on another device than the param
    opt, a, b = _two_groups_one_stepped({"capturable": True, "foreach": foreach})
    opt.step()  # creates b's state (capturable: step on b's device, the CPU)
    opt.state[b]["step"] = opt.state[b]["step"].to("meta")
    a.grad = torch.ones(3, dtype=torch.float64)
    b.grad = torch.ones(3, dtype=torch.float64)
    with pytest.raises(AssertionError, match="capturable=True"):
        opt.step()
    assert float(opt.state[a]["step"]) == 2.0  # group 0 did not step again
    # the functional API checks the same
    import radam.functional as F

    with pytest.raises(AssertionError, match="capturable=True"):
        F.radam(
            [b.detach()],
            [torch.ones(3, dtype=torch.float64)],
            [torch.zeros(3, dtype=torch.float64)],
            [torch.zeros(3, dtype=torch.float64)],
            [torch.zeros((), device="meta")],
            lr=0.1,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            capturable=True,
            foreach=foreach,
        )


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_maximize_never_touches_grad(foreach, weight_decay):
    p = torch.randn(4, dtype=torch.float64, requires_grad=True)
    opt = RAdam([p], lr=0.1, maximize=True, foreach=foreach, weight_decay=weight_decay)
    g = torch.randn(4, dtype=torch.float64)
    p.grad = g.clone()
    grad_obj = p.grad
    before = p.detach().clone()
    for _ in range(7):
        opt.step()
    assert p.grad is grad_obj and torch.equal(p.grad, g)
    if weight_decay == 0:
        assert torch.all((p.detach() - before) * g > 0)  # moved up the gradient


def test_closure_is_evaluated_with_grad_and_its_loss_returned():
    """Called under no_grad, the closure still builds a graph (its loss requires grad) ..."""
    model = _model()
    x, y = _data()
    opt = RAdam(model.parameters(), lr=0.01)
    closure = _closure(model, opt, x, y)
    with torch.no_grad():
        loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad is True
    assert opt.step() is None


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
def test_step_updates_under_no_grad_by_itself(foreach, capturable):
    """... and called with grad enabled (no no_grad around it), the update itself is not recorded by autograd:
    params stay leaves without grad_fn, the state does not require grad, and grad mode is restored afterwards.
    (Without step's own no_grad, the in-place update of a leaf that requires grad would raise.)"""
    model = _model()
    x, y = _data()
    opt = RAdam(model.parameters(), lr=0.01, foreach=foreach, capturable=capturable)
    before = [p.detach().clone() for p in model.parameters()]
    assert torch.is_grad_enabled()
    grad_mode_in_step = []
    opt.register_step_pre_hook(lambda o, a, k: grad_mode_in_step.append(torch.is_grad_enabled()))
    loss = opt.step(_closure(model, opt, x, y))
    assert loss.requires_grad and torch.is_grad_enabled()
    assert all(p.is_leaf and p.grad_fn is None and p.requires_grad for p in model.parameters())
    assert not any(p.equal(b) for p, b in zip(model.parameters(), before))  # the update did happen
    assert all(not v.requires_grad for s in opt.state.values() for v in s.values())
    assert grad_mode_in_step == [True]  # the hooks run outside step's no_grad, as in torch


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("decoupled", [False, True])
def test_loss_goes_the_right_way(foreach, decoupled):
    for maximize in (False, True):
        model = _model()
        x, y = _data()
        opt = RAdam(
            model.parameters(),
            lr=0.01,
            foreach=foreach,
            maximize=maximize,
            weight_decay=0.01,
            decoupled_weight_decay=decoupled,
        )
        closure = _closure(model, opt, x, y)
        first = float(closure().detach())
        for _ in range(20):
            opt.step(closure)
        last = float(closure().detach())
        assert (last > first) if maximize else (last < first)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
def test_zero_grads_without_decay_leave_params_unchanged(foreach, capturable):
    p = torch.randn(5, dtype=torch.float64, requires_grad=True)
    before = p.detach().clone()
    opt = RAdam([p], foreach=foreach, capturable=capturable, amsgrad=True)
    for _ in range(8):
        p.grad = torch.zeros_like(p)
        opt.step()
    assert torch.equal(p.detach(), before)


@pytest.mark.parametrize("foreach", [False, True])
def test_decoupled_decay_on_every_step_including_degenerate_phase(foreach):
    p = torch.full((3,), 2.0, dtype=torch.float64, requires_grad=True)
    opt = RAdam([p], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True, foreach=foreach)
    for t in range(1, 9):
        p.grad = torch.zeros_like(p)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.full((3,), 2.0 * 0.95**t, dtype=torch.float64))


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
def test_tensor_lr_gives_the_float_lr_trajectory(foreach, capturable):
    results = []
    for lr in (0.01, torch.tensor(0.01, dtype=torch.float64)):
        model = _model()
        x, y = _data()
        opt = RAdam(model.parameters(), lr=lr, foreach=foreach, capturable=capturable, weight_decay=0.1)
        closure = _closure(model, opt, x, y)
        for _ in range(8):
            opt.step(closure)
        results.append([p.detach().clone() for p in model.parameters()])
    # a tensor lr enters 0-d tensor arithmetic instead of Python float arithmetic: equal up to rounding
    tol = dict(rtol=1e-14, atol=1e-15)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **tol)


def test_complex_params_equal_their_real_view_twins():
    for foreach in (False, True):
        gen = torch.Generator().manual_seed(4)
        z = torch.randn(3, 2, generator=gen, dtype=torch.complex128)
        r = torch.randn(2, generator=gen, dtype=torch.float64)
        pz, pr = z.clone().requires_grad_(), r.clone().requires_grad_()
        qz, qr = torch.view_as_real(z).clone().requires_grad_(), r.clone().requires_grad_()
        o1 = RAdam([pz, pr], lr=0.1, weight_decay=0.1, foreach=foreach)
        o2 = RAdam([qz, qr], lr=0.1, weight_decay=0.1, foreach=foreach)
        for _ in range(9):
            gz = torch.randn(3, 2, generator=gen, dtype=torch.complex128)
            gr = torch.randn(2, generator=gen, dtype=torch.float64)
            pz.grad, pr.grad, qz.grad, qr.grad = gz.clone(), gr.clone(), torch.view_as_real(gz).clone(), gr.clone()
            o1.step()
            o2.step()
            assert torch.equal(torch.view_as_real(pz.detach()), qz.detach()) and torch.equal(pr, qr)


# --- Implementations -----------------------------------------------------------------------------------------------


def test_foreach_default_is_chosen_like_torch(monkeypatch):
    """foreach=None: the for-loop on the CPU; foreach where torch's foreach kernels run (CUDA) unless
    differentiable. The CUDA case is simulated by adding the CPU to torch's list of foreach devices, so that
    torch's own _default_to_fused_or_foreach decides (it is not replaced)."""
    import radam.functional as F

    calls = []
    monkeypatch.setattr(F, "_single_tensor_radam", lambda *a, **k: calls.append("single"))
    monkeypatch.setattr(F, "_multi_tensor_radam", lambda *a, **k: calls.append("multi"))
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.ones(2)
    RAdam([p]).step()  # CPU: for-loop
    RAdam([p], foreach=True).step()
    RAdam([p], differentiable=True).step()
    assert calls == ["single", "multi", "single"]
    calls.clear()
    optimizer_module = sys.modules["torch.optim.optimizer"]
    devices = optimizer_module._get_foreach_kernels_supported_devices()
    monkeypatch.setattr(optimizer_module, "_get_foreach_kernels_supported_devices", lambda: [*devices, "cpu"])
    RAdam([p]).step()  # what CUDA params get
    RAdam([p], differentiable=True).step()  # differentiable: never foreach by default
    RAdam([p], foreach=False).step()
    assert calls == ["multi", "single", "single"]


def test_differentiable_with_foreach_is_refused():
    p = torch.zeros(2, requires_grad=True)
    opt = RAdam([p], foreach=True, differentiable=True)
    p.grad = torch.ones(2)
    with pytest.raises(AssertionError, match="autograd"):
        opt.step()


def test_fused_on_this_machine_raises_a_clear_error():
    p = torch.zeros(2, requires_grad=True)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="fused"):
            RAdam([p], fused=True)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        RAdam([p], fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="differentiable"):
        RAdam([p], fused=True, differentiable=True)


def test_fused_missing_module_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "radam.fused", None)  # import radam.fused -> ImportError
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="fused=True needs a CUDA device and Triton"):
        RAdam([p], fused=True)


def _stub_fused_module(calls):
    """A stand-in for radam.fused that honours its contract (check, build a plan, point it at new gradients, launch
    it) by running the for-loop path on the plan's lists."""
    from radam.functional import _single_tensor_radam

    module = types.ModuleType("radam.fused")

    def check_fused_supported(params):
        calls.append(("check", len(params)))

    def build_plan(lists, amsgrad, tuning=None):
        calls.append(("plan", len(lists[0])))
        return types.SimpleNamespace(lists=lists, amsgrad=amsgrad, captured=False)

    def point_at_gradients(plan, params, grads, addresses):
        calls.append(("gradients", len(grads)))
        plan.lists = [plan.lists[0], grads, *plan.lists[2:]]

    def check_lr(plan, lr):
        calls.append(("lr", float(lr)))

    def launch_plan(plan, **kwargs):
        calls.append(("step", sorted(kwargs)))
        params, grads, exp_avgs, exp_avg_sqs, state_steps, *max_exp_avg_sqs = plan.lists
        # float32 maths for low-precision params (their moments are float32), written back afterwards
        masters = [p.detach().float() for p in params]
        _single_tensor_radam(
            masters,
            [g.float() for g in grads],
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs[0] if max_exp_avg_sqs else [],
            state_steps,
            differentiable=False,
            has_complex=False,
            capturable=False,
            **kwargs,
        )
        with torch.no_grad():
            for p, m in zip(params, masters):
                p.copy_(m)

    for function in (check_fused_supported, build_plan, point_at_gradients, check_lr, launch_plan):
        setattr(module, function.__name__, function)
    return module


def test_fused_dispatch_contract_and_float32_state(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "radam.fused", _stub_fused_module(calls))
    a = torch.ones(3, dtype=torch.bfloat16, requires_grad=True)
    b = torch.ones(2, dtype=torch.float32, requires_grad=True)
    opt = RAdam([a, b], fused=True, amsgrad=True)
    assert calls == [("check", 2)]
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    opt.step()
    launch_arguments = sorted(
        [
            "lr",
            "beta1",
            "beta2",
            "eps",
            "weight_decay",
            "decoupled_weight_decay",
            "degenerate",
            "threshold",
            "rectifier",
            "amsgrad",
            "maximize",
        ]
    )
    # checked again before the first step, then a plan for the two parameters, the lr, and the launch
    lr, step = ("lr", 1e-3), ("step", launch_arguments)
    assert calls[1:] == [("check", 2), ("plan", 2), lr, step]
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert opt.state[a][key].dtype == torch.float32
    assert opt.state[a]["step"].dtype == torch.float32 and opt.state[a]["step"].device == a.device
    # later steps re-use the plan: new gradients only re-point it; options are read at each launch, except amsgrad,
    # which changes the plan's rows; a moved parameter needs a new plan
    del calls[:]
    opt.step()
    a.grad, b.grad = torch.full_like(a, 2.0), torch.full_like(b, 2.0)
    opt.step()
    opt.param_groups[0]["weight_decay"] = 0.1
    opt.step()
    opt.param_groups[0]["amsgrad"] = False
    opt.step()
    b.data = torch.zeros(2)
    opt.step()
    assert calls == [
        lr,
        step,
        ("gradients", 2),
        lr,
        step,
        lr,
        step,
        ("check", 2),
        ("plan", 2),
        lr,
        step,
        ("check", 2),
        ("plan", 2),
        lr,
        step,
    ]
    assert [float(opt.state[p]["step"]) for p in (a, b)] == [6.0, 6.0]
    opt.param_groups[0]["amsgrad"] = True
    # load_state_dict would cast the moments to bfloat16; the fused optimizer keeps them in float32
    # values that bfloat16 cannot represent, so that a round trip through it would show
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        opt.state[a][key].copy_(torch.tensor([1 / 3, 1e-3 + 1e-7, 12345.678]))
    sd = opt.state_dict()
    opt2 = RAdam([a, b], fused=True, amsgrad=True)
    opt2.load_state_dict(sd)
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        loaded = opt2.state[a][key]
        assert loaded.dtype == torch.float32 and torch.equal(loaded, opt.state[a][key])
        assert loaded.data_ptr() != opt.state[a][key].data_ptr()  # a copy, as torch's load_state_dict makes


def test_switching_fused_off_with_float32_moments_is_refused_naming_the_parameter(monkeypatch):
    """The fused step keeps float32 moments for a bfloat16 parameter; the other paths cannot use them. Switching
    fused off is refused before anything moves, naming the parameter, and stays refused until it is undone."""
    monkeypatch.setitem(sys.modules, "radam.fused", _stub_fused_module([]))
    a = torch.ones(3, dtype=torch.float32, requires_grad=True)
    b = torch.ones(2, dtype=torch.bfloat16, requires_grad=True)
    opt = RAdam([a, b], fused=True)
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    opt.step()
    before = {key: value.clone() for key, value in opt.state[b].items()}
    a_before = a.detach().clone()
    opt.param_groups[0]["fused"] = None
    for _ in range(2):
        with pytest.raises(
            ValueError,
            match=r"param group 0, parameter 1: state 'exp_avg' is torch.float32 but the "
            r"parameter is torch.bfloat16",
        ):
            opt.step()
    assert all(torch.equal(opt.state[b][key], value) for key, value in before.items())
    assert float(opt.state[a]["step"]) == 1.0 and torch.equal(a.detach(), a_before)
    opt.param_groups[0]["fused"] = True
    opt.step()
    assert float(opt.state[b]["step"]) == 2.0


@pytest.mark.parametrize("how", ["load_state_dict", "deepcopy"])
def test_switching_fused_off_after_loading_is_refused_too(monkeypatch, how):
    """A fused bfloat16 checkpoint resumed where the fused step cannot run: with fused switched off, the loaded
    float32 moments are refused before any step count moves (the cached steps of the old optimizer are gone)."""
    monkeypatch.setitem(sys.modules, "radam.fused", _stub_fused_module([]))
    b = torch.ones(2, dtype=torch.bfloat16, requires_grad=True)
    opt = RAdam([b], fused=True)
    b.grad = torch.ones_like(b)
    opt.step()
    if how == "deepcopy":
        resumed = copy.deepcopy(opt)
        b = resumed.param_groups[0]["params"][0]
        b.grad = torch.ones_like(b)
    else:
        resumed = RAdam([b], fused=True)
        resumed.load_state_dict(opt.state_dict())
    resumed.param_groups[0]["fused"] = None
    for foreach in (False, True):
        resumed.param_groups[0]["foreach"] = foreach
        with pytest.raises(ValueError, match="state 'exp_avg' is torch.float32 but the parameter is torch.bfloat16"):
            resumed.step()
    assert float(resumed.state[b]["step"]) == 1.0


def test_load_state_dict_pre_hooks_changes_to_fused_float32_moments_are_kept(monkeypatch):
    monkeypatch.setitem(sys.modules, "radam.fused", _stub_fused_module([]))
    b = torch.ones(3, dtype=torch.bfloat16, requires_grad=True)
    opt = RAdam([b], fused=True)
    b.grad = torch.ones_like(b)
    opt.step()
    saved = opt.state_dict()

    def scale_the_moments(optimizer, state_dict):
        state_dict = copy.deepcopy(state_dict)
        state_dict["state"][0]["exp_avg"] = state_dict["state"][0]["exp_avg"] / 3
        return state_dict

    resumed = RAdam([b], fused=True)
    resumed.register_load_state_dict_pre_hook(scale_the_moments)
    resumed.load_state_dict(saved)
    expected = saved["state"][0]["exp_avg"] / 3
    assert resumed.state[b]["exp_avg"].dtype == torch.float32 and torch.equal(resumed.state[b]["exp_avg"], expected)


# --- Serialisation and lifecycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, dict(amsgrad=True, degenerate="skip", rectifier="exact", threshold=4.0)])
def test_state_dict_round_trip_reproduces_the_trajectory(options):
    model = _model()
    x, y = _data()
    opt = RAdam(model.parameters(), lr=0.01, **options)
    closure = _closure(model, opt, x, y)
    for _ in range(4):
        opt.step(closure)
    clone = copy.deepcopy(model)
    opt_clone = RAdam(clone.parameters(), lr=0.01, **options)
    opt_clone.load_state_dict(copy.deepcopy(opt.state_dict()))  # load_state_dict shares same-dtype tensors
    closure_clone = _closure(clone, opt_clone, x, y)
    for _ in range(8):
        opt.step(closure)
        opt_clone.step(closure_clone)
        for p, q in zip(model.parameters(), clone.parameters()):
            assert torch.equal(p, q)
        sd, sd_clone = opt.state_dict(), opt_clone.state_dict()
        assert sd["param_groups"] == sd_clone["param_groups"]
        for k in sd["state"]:
            _state_equal(sd["state"][k], sd_clone["state"][k])


def _trained_optimizer(**options):
    model = _model()
    x, y = _data()
    opt = RAdam(model.parameters(), lr=0.01, **options)
    closure = _closure(model, opt, x, y)
    for _ in range(3):
        opt.step(closure)
    return opt


def _saved(state_dict):
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getvalue()


@pytest.mark.parametrize("options", [dict(amsgrad=True), dict(capturable=True, rectifier="exact", degenerate="skip")])
def test_state_dict_is_deterministic(options):
    """Two state_dict() calls give the same dict, and so do two optimizers built and run the same way: equal
    groups, equal state tensors, the same keys in the same order, byte-identical when saved."""
    opt = _trained_optimizer(**options)
    first, second = opt.state_dict(), opt.state_dict()
    twin = _trained_optimizer(**options).state_dict()
    for other in (second, twin):
        assert other["param_groups"] == first["param_groups"]
        assert list(other["state"]) == list(first["state"])
        for k in first["state"]:
            assert list(other["state"][k]) == list(first["state"][k])
            _state_equal(other["state"][k], first["state"][k])
        assert _saved(other) == _saved(first)


def test_state_dict_holds_only_plain_data():
    """It saves and loads with torch.load(weights_only=True) (tensors and Python values only)."""
    opt = _trained_optimizer(amsgrad=True)
    sd = opt.state_dict()
    loaded = torch.load(io.BytesIO(_saved(sd)), weights_only=True)
    assert loaded["param_groups"] == sd["param_groups"]
    for k in sd["state"]:
        _state_equal(loaded["state"][k], sd["state"][k])
    opt2 = RAdam([p for group in opt.param_groups for p in group["params"]], lr=0.01, amsgrad=True)
    opt2.load_state_dict(loaded)
    assert opt2.state_dict()["param_groups"] == sd["param_groups"]


@pytest.mark.parametrize("foreach", [False, True])
def test_torch_state_dict_loads_into_ours_and_back(foreach):
    """torch -> radam -> torch, trajectories continuing in lock step with a torch run that never switched."""
    x, y = _data()
    reference = _model()
    opt_ref = torch.optim.RAdam(reference.parameters(), lr=0.01, weight_decay=0.1, foreach=foreach)
    model = _model()
    opt = torch.optim.RAdam(model.parameters(), lr=0.01, weight_decay=0.1, foreach=foreach)
    closure_ref = _closure(reference, opt_ref, x, y)
    for cls in [RAdam, torch.optim.RAdam]:
        for _ in range(4):
            opt_ref.step(closure_ref)
            opt.step(_closure(model, opt, x, y))
        new = cls(model.parameters(), lr=0.01, weight_decay=0.1, foreach=foreach)
        new.load_state_dict(opt.state_dict())
        if cls is RAdam:
            assert all(new.param_groups[0][k] == v for k, v in NEW_OPTIONS.items())  # back-filled
        opt = new
        for p, q in zip(reference.parameters(), model.parameters()):
            assert torch.equal(p, q)
    for _ in range(4):
        opt_ref.step(closure_ref)
        opt.step(_closure(model, opt, x, y))
    for p, q in zip(reference.parameters(), model.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(reference.parameters(), model.parameters()):
        _state_equal(opt_ref.state[p], opt.state[q])


def test_older_state_dict_without_new_flags_and_with_number_steps_loads():
    model = _model()
    x, y = _data()
    opt = RAdam(model.parameters(), lr=0.01)
    closure = _closure(model, opt, x, y)
    for _ in range(3):
        opt.step(closure)
    sd = copy.deepcopy(opt.state_dict())
    for group in sd["param_groups"]:
        for key in ["foreach", "maximize", "differentiable", "decoupled_weight_decay", "capturable", *NEW_OPTIONS]:
            del group[key]
    for i, state in sd["state"].items():
        state["step"] = 3 if i % 2 else 3.0  # a plain int or float, as very old optimizers stored it
    fresh = RAdam(model.parameters(), lr=0.01, degenerate="skip")
    fresh.load_state_dict(sd)
    group = fresh.param_groups[0]
    assert group["degenerate"] == "sgd" and group["threshold"] == 5.0 and group["capturable"] is False
    for state in fresh.state.values():
        assert torch.is_tensor(state["step"]) and state["step"].dtype == torch.float32 and float(state["step"]) == 3
    fresh.step(_closure(model, fresh, x, y))
    assert all(float(s["step"]) == 4 for s in fresh.state.values())


def test_pickled_optimizer_without_new_flags_unpickles():
    p = torch.ones(2, requires_grad=True)
    opt = RAdam([p])
    p.grad = torch.ones(2)
    opt.step()
    state = opt.__getstate__()
    for group in state["param_groups"]:
        for key in NEW_OPTIONS:
            del group[key]
    for s in state["state"].values():
        s["step"] = 1
    restored = RAdam.__new__(RAdam)
    restored.__setstate__(state)
    assert restored.param_groups[0]["rectifier"] == "paper"
    assert torch.is_tensor(restored.state[p]["step"])
    again = pickle.loads(pickle.dumps(opt))
    assert again.defaults == opt.defaults


@pytest.mark.parametrize(
    "other_layout",
    [
        lambda: [torch.zeros(4, 3), torch.zeros(3)],  # transposed weight, other bias
        lambda: [torch.zeros(3, 4)],  # fewer params
        lambda: [torch.zeros(3, 4), torch.zeros(4), torch.zeros(1)],  # more params
    ],
)
def test_state_dict_from_another_layout_raises_and_changes_nothing(other_layout):
    other = [p.requires_grad_() for p in other_layout()]
    opt_other = RAdam(other, lr=0.01)
    for p in other:
        p.grad = torch.ones_like(p)
    opt_other.step()
    w, b = torch.zeros(3, 4, requires_grad=True), torch.zeros(4, requires_grad=True)
    opt = RAdam([w, b], lr=0.01)
    w.grad, b.grad = torch.ones_like(w), torch.ones_like(b)
    opt.step()
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="state dict|parameter group"):
        opt.load_state_dict(opt_other.state_dict())
    after = opt.state_dict()
    assert before["param_groups"] == after["param_groups"]
    for k in before["state"]:
        _state_equal(before["state"][k], after["state"][k])
    opt.step()  # still works


def test_deepcopy_print_and_non_empty_state():
    model = _model()
    x, y = _data()
    opt = RAdam(model.parameters(), lr=0.01, degenerate="skip", amsgrad=True)
    opt.step(_closure(model, opt, x, y))
    assert len(opt.state) > 0
    dup = copy.deepcopy(opt)
    for attr, value in vars(opt).items():
        if attr.startswith("_"):
            continue
        assert attr in vars(dup)
        if attr == "defaults":
            assert dup.defaults == value
    text = repr(opt)
    assert text.startswith("RAdam (") and "degenerate: skip" in text and "amsgrad: True" in text


def test_per_group_lr_and_weight_decay():
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(3, dtype=torch.float64, requires_grad=True)
    c = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = RAdam([{"params": [a]}, {"params": [b], "lr": 1e-28}, {"params": [c], "weight_decay": 1.0}], lr=0.1)
    for _ in range(8):
        for p in (a, b, c):
            p.grad = torch.ones_like(p)
        opt.step()
    assert torch.equal(b.detach(), torch.ones(3, dtype=torch.float64))
    assert not torch.equal(a, c)  # c's L2 decay doubled its gradient: same sign, other moments


SCHEDULERS = {
    "LambdaLR": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.9**e),
    "MultiplicativeLR": lambda o: torch.optim.lr_scheduler.MultiplicativeLR(o, lambda e: 0.95),
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5], gamma=0.3),
    "ConstantLR": lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=4),
    "LinearLR": lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=6),
    "ExponentialLR": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "PolynomialLR": lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=8, power=2.0),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5),
    "CosineAnnealingWarmRestarts": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3),
    "CyclicLR": lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.001, 0.05, step_size_up=3),  # cycles beta1 too
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=20),
    "SequentialLR": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o,
        [
            torch.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=3),
            torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
        ],
        milestones=[3],
    ),
    "ChainedScheduler": lambda o: torch.optim.lr_scheduler.ChainedScheduler(
        [
            torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3),
            torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
        ]
    ),
    "ReduceLROnPlateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5, threshold=0.5),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_lr_scheduler_drives_it_exactly_like_torch(name):
    runs = []
    for cls in (torch.optim.RAdam, RAdam):
        model = _model()
        x, y = _data()
        opt = cls(model.parameters(), lr=0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched = SCHEDULERS[name](opt)
        closure = _closure(model, opt, x, y)
        lrs = []
        for _ in range(12):
            loss = opt.step(closure)
            sched.step(float(loss.detach())) if name == "ReduceLROnPlateau" else sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        runs.append(([p.detach().clone() for p in model.parameters()], lrs))
    (pa, la), (pb, lb) = runs
    assert la == lb and len(set(la)) > 1
    for a, b in zip(pa, pb):
        assert torch.equal(a, b)


# --- Hooks ---------------------------------------------------------------------------------------------------------


def test_step_hooks_fire_in_torchs_order_with_prepend_and_removal():
    p = torch.ones(2, requires_grad=True)
    opt = RAdam([p])
    order = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: order.append("global pre")),
        register_optimizer_step_post_hook(lambda o, a, k: order.append("global post")),
        opt.register_step_pre_hook(lambda o, a, k: order.append("local pre")),
        opt.register_step_post_hook(lambda o, a, k: order.append("local post")),
    ]
    try:
        p.grad = torch.ones(2)
        opt.step()
        assert order == ["global pre", "local pre", "local post", "global post"]
        order.clear()
        for h in handles:
            h.remove()
        opt.step()
        assert order == []
    finally:
        for h in handles:
            h.remove()


def test_state_dict_and_load_state_dict_hooks():
    p = torch.ones(2, requires_grad=True)
    opt = RAdam([p])
    p.grad = torch.ones(2)
    opt.step()
    order = []
    opt.register_state_dict_pre_hook(lambda o: order.append("sd pre"))
    opt.register_state_dict_post_hook(lambda o, sd: order.append("sd post"))
    opt.register_load_state_dict_pre_hook(lambda o, sd: order.append("load pre 1"))
    opt.register_load_state_dict_pre_hook(lambda o, sd: order.append("load pre 0"), prepend=True)
    handle = opt.register_load_state_dict_post_hook(lambda o: order.append("load post"))
    sd = opt.state_dict()
    opt.load_state_dict(sd)
    assert order == ["sd pre", "sd post", "load pre 0", "load pre 1", "load post"]
    handle.remove()
    order.clear()
    opt.load_state_dict(sd)
    assert order == ["load pre 0", "load pre 1"]


def test_radam_is_exported():
    assert radam.RAdam is RAdam and "RAdam" in radam.__all__


def test_named_parameters_state_dict_loads_into_unnamed_and_back():
    model = _model()
    x, y = _data()
    named = RAdam(model.named_parameters(), lr=0.01)
    named.step(_closure(model, named, x, y))
    sd = named.state_dict()
    assert sd["param_groups"][0]["param_names"] == [n for n, _ in model.named_parameters()]
    unnamed = RAdam(model.parameters(), lr=0.01)
    unnamed.load_state_dict(copy.deepcopy(sd))
    assert unnamed.param_groups[0]["param_names"] == sd["param_groups"][0]["param_names"]
    named2 = RAdam(model.named_parameters(), lr=0.01)
    named2.load_state_dict(copy.deepcopy(unnamed.state_dict()))
    for k in sd["state"]:
        _state_equal(named2.state_dict()["state"][k], sd["state"][k])


def test_load_state_dict_takes_the_saved_options_as_torch_does():
    """Loading replaces each group's options with the saved ones (capturable and lr included), as torch's does, and
    the step count lands where the saved options put it."""

    def loaded(cls):
        p = torch.nn.Parameter(torch.ones(3))
        p.grad = torch.ones(3)
        source = cls([p], lr=0.01)
        source.step()
        q = torch.nn.Parameter(torch.ones(3))
        target = cls([q], lr=0.5, capturable=True)
        target.load_state_dict(source.state_dict())
        return target.param_groups[0], target.state[q]["step"]

    ours, our_step = loaded(radam.RAdam)
    theirs, their_step = loaded(torch.optim.RAdam)
    assert ours["capturable"] is theirs["capturable"] is False
    assert ours["lr"] == theirs["lr"] == 0.01
    assert our_step.device == their_step.device and our_step.dtype == their_step.dtype
    assert float(our_step) == float(their_step) == 1.0
