"""Adam-2k: frozen parameters and first moment, second moment = EMA of g^2, then exactly torch's Adam."""

import copy

import pytest
import torch

from radam.variants import Adam2k, AdamEps


@pytest.fixture(autouse=True)
def _float64():
    """Bit-for-bit comparisons in float64; the default dtype is restored for the other test modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 5, generator=gen)
    y = torch.randn(32, 3, generator=gen)
    model = torch.nn.Linear(5, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 5, generator=gen))
        model.bias.copy_(torch.randn(3, generator=gen))
    return model, x, y


def _grad_step(model, x, y, opt):
    opt.zero_grad()
    loss = ((model(x) ** 2).sum(1) - (y**2).sum(1)).pow(2).mean()  # non-quadratic so gradients change
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    return grads


@pytest.mark.parametrize("decoupled", [False, True])
def test_parameters_and_first_moment_frozen_second_moment_is_ema(decoupled):
    model, x, y = _problem()
    before = [p.detach().clone() for p in model.parameters()]
    beta2, k = 0.99, 7
    wd = 0.1
    opt = Adam2k(
        model.parameters(),
        lr=0.1,
        betas=(0.9, beta2),
        weight_decay=wd,
        decoupled_weight_decay=decoupled,
        freeze_steps=k,
    )
    ema = [torch.zeros_like(p) for p in model.parameters()]
    for _ in range(k):
        grads = _grad_step(model, x, y, opt)
        for i, (g, p) in enumerate(zip(grads, model.parameters())):
            if not decoupled:
                g = g + wd * p.detach()
            ema[i] = beta2 * ema[i] + (1 - beta2) * g * g
    for p, b, e in zip(model.parameters(), before, ema):
        assert torch.equal(p.detach(), b)  # bit-identical: the parameters never moved
        state = opt.state[p]
        assert torch.count_nonzero(state["exp_avg"]) == 0
        torch.testing.assert_close(state["exp_avg_sq"], e, rtol=1e-14, atol=0)
        assert state["step"].item() == k and state["step"].dtype == torch.float32
    _grad_step(model, x, y, opt)  # step k + 1 moves everything
    assert all(not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))


@pytest.mark.parametrize("decoupled", [False, True])
def test_after_freeze_equals_torch_adam_continuing_from_v(decoupled):
    model, x, y = _problem(1)
    k = 5
    opt = Adam2k(
        model.parameters(),
        lr=0.01,
        betas=(0.8, 0.95),
        eps=1e-6,
        weight_decay=0.05,
        decoupled_weight_decay=decoupled,
        freeze_steps=k,
    )
    for _ in range(k):
        _grad_step(model, x, y, opt)
    twin = copy.deepcopy(model)
    ref = torch.optim.Adam(
        twin.parameters(),
        lr=0.01,
        betas=(0.8, 0.95),
        eps=1e-6,
        weight_decay=0.05,
        decoupled_weight_decay=decoupled,
        foreach=False,
    )
    for p, q in zip(model.parameters(), twin.parameters()):
        ref.state[q] = {key: value.clone() for key, value in opt.state[p].items()}
    for _ in range(20):
        _grad_step(model, x, y, opt)
        _grad_step(twin, x, y, ref)
        for p, q in zip(model.parameters(), twin.parameters()):
            assert torch.equal(p, q)
            assert torch.equal(opt.state[p]["exp_avg"], ref.state[q]["exp_avg"])


def test_zero_freeze_is_adam_from_scratch():
    model, x, y = _problem(2)
    twin = copy.deepcopy(model)
    opt = Adam2k(model.parameters(), lr=0.01, freeze_steps=0, first_moment_correction="since_unfreeze")
    ref = torch.optim.Adam(twin.parameters(), lr=0.01, foreach=False)
    for _ in range(10):
        _grad_step(model, x, y, opt)
        _grad_step(twin, x, y, ref)
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)


def test_since_unfreeze_correction_gives_full_first_step():
    # One parameter, constant gradient 1: with since_unfreeze the first post-freeze update is a full lr step
    # (m_hat = g, v_hat = g^2); with the total count it is (1 - beta1) of that, since 1 - beta1^(k+1) ~ 1.
    for correction, expected in [("since_unfreeze", 1.0), ("total", 0.1 / (1 - 0.9**51))]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = Adam2k([p], lr=1.0, eps=0.0, freeze_steps=50, first_moment_correction=correction)
        for _ in range(51):
            opt.zero_grad()
            p.grad = torch.ones(1)
            opt.step()
        assert p.item() == pytest.approx(-expected, rel=1e-12)


def test_maximize_flips_the_gradient():
    model, x, y = _problem(3)
    twin = copy.deepcopy(model)
    opt = Adam2k(model.parameters(), lr=0.01, freeze_steps=3, maximize=True)
    ref = Adam2k(twin.parameters(), lr=0.01, freeze_steps=3)
    for _ in range(6):
        opt.zero_grad()
        (-((model(x) - y) ** 2).mean()).backward()
        opt.step()
        ref.zero_grad()
        ((twin(x) - y) ** 2).mean().backward()
        ref.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)


def test_state_dict_round_trip_resumes_identically():
    model, x, y = _problem(4)
    opt = Adam2k(model.parameters(), lr=0.01, freeze_steps=3)
    for _ in range(4):
        _grad_step(model, x, y, opt)
    twin = copy.deepcopy(model)
    opt2 = Adam2k(twin.parameters(), lr=0.5, freeze_steps=100)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.param_groups[0]["freeze_steps"] == 3 and opt2.param_groups[0]["lr"] == 0.01
    for _ in range(3):
        _grad_step(model, x, y, opt)
        _grad_step(twin, x, y, opt2)
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(lr=-1.0), "lr"),
        (dict(eps=-1.0), "eps"),
        (dict(betas=(1.0, 0.999)), "betas"),
        (dict(betas=(0.9, -0.1)), "betas"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(freeze_steps=-1), "freeze_steps"),
        (dict(freeze_steps=2.5), "freeze_steps"),
        (dict(first_moment_correction="bogus"), "first_moment_correction"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Adam2k([torch.nn.Parameter(torch.zeros(1))], **kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# AdamEps: the paper's Adam-eps, eps added to sqrt(v_t) before the bias correction (fairseq's and the official code's
# Adam), checked against that formula written out, not against the class's own eps_t rescaling


def _fairseq_adam_reference(params, grads_per_step, lr, betas, eps, weight_decay):
    """fairseq's Adam step written out: decoupled decay, then p -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps)."""
    beta1, beta2 = betas
    params = [p.detach().clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            params[i] = params[i] * (1 - lr * weight_decay)
            step_size = lr * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
            params[i] = params[i] - step_size * m[i] / (v[i].sqrt() + eps)
    return params


@pytest.mark.parametrize("foreach", [False, True])
def test_adam_eps_is_fairseqs_adam_and_keeps_its_eps(foreach):
    model, x, y = _problem()
    betas, eps, lr, wd = (0.9, 0.98), 1e-2, 0.05, 0.1  # eps large enough that its placement changes the result
    opt = AdamEps(
        model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=wd, decoupled_weight_decay=True, foreach=foreach
    )
    start = [p.detach().clone() for p in model.parameters()]
    grads_per_step = [_grad_step(model, x, y, opt) for _ in range(8)]
    expected = _fairseq_adam_reference(start, grads_per_step, lr, betas, eps, wd)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-12, atol=1e-14)
    assert opt.param_groups[0]["eps"] == eps and opt.state_dict()["param_groups"][0]["eps"] == eps

    torch_model, _, _ = _problem()
    torch_opt = torch.optim.Adam(
        torch_model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=wd, decoupled_weight_decay=True
    )
    for _ in range(8):
        _grad_step(torch_model, x, y, torch_opt)
    gap = max((p - q).abs().max().item() for p, q in zip(model.parameters(), torch_model.parameters()))
    assert gap > 1e-4  # torch's placement is a different optimiser in the first steps


def test_adam_eps_per_group_betas_and_a_group_added_later():
    """Each group's epsilon_t uses its own beta2 and its own step count."""
    model, x, y = _problem()
    weight, bias = model.weight, model.bias
    opt = AdamEps([{"params": [weight], "betas": (0.9, 0.9)}], lr=0.05, betas=(0.8, 0.98), eps=1e-2)
    start_weight, start_bias = weight.detach().clone(), bias.detach().clone()
    first = [_grad_step(model, x, y, opt) for _ in range(3)]
    opt.add_param_group({"params": [bias]})
    later = [_grad_step(model, x, y, opt) for _ in range(3)]
    expected_weight = _fairseq_adam_reference(
        [start_weight], [[g[0]] for g in first + later], 0.05, (0.9, 0.9), 1e-2, 0.0
    )
    expected_bias = _fairseq_adam_reference([start_bias], [[g[1]] for g in later], 0.05, (0.8, 0.98), 1e-2, 0.0)
    torch.testing.assert_close(weight.detach(), expected_weight[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(bias.detach(), expected_bias[0], rtol=1e-12, atol=1e-14)
    assert opt.state[weight]["step"] == 6 and opt.state[bias]["step"] == 3


def test_adam_eps_step_hooks_run_once_and_see_the_groups_eps():
    """torch wraps each optimizer class's step in its hook runner once the class has an instance; AdamEps calls
    Adam's step inside its own, so an Adam built anywhere must not make the hooks run twice."""
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # Adam.step is now wrapped too
    p = torch.nn.Parameter(torch.zeros(3))
    opt = AdamEps([p], eps=1e-2)
    seen = []
    opt.register_step_pre_hook(lambda o, args, kwargs: seen.append(("pre", o.param_groups[0]["eps"])))
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append(("post", o.param_groups[0]["eps"])))
    p.grad = torch.ones(3)
    opt.step()
    assert seen == [("pre", 1e-2), ("post", 1e-2)]


def test_adam_eps_refuses_a_group_with_mixed_step_counts_and_changes_nothing():
    model, x, y = _problem()
    opt = AdamEps(model.parameters(), lr=0.05, eps=1e-2)
    _grad_step(model, x, y, opt)
    model.bias.grad = None
    model.weight.grad = torch.ones_like(model.weight)
    opt.step()  # only the weight takes its second step
    model.bias.grad = torch.ones_like(model.bias)
    before = copy.deepcopy(opt.state_dict())
    params_before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"param group 0 .* different numbers of steps \[1, 2\]"):
        opt.step()
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for key, state in before["state"].items():
        for name, value in state.items():
            assert torch.equal(after["state"][key][name], value)
    for p, b in zip(model.parameters(), params_before):
        assert torch.equal(p.detach(), b)


def test_adam_eps_restores_eps_when_the_step_fails():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = AdamEps([p], eps=1e-3)
    p.grad = torch.sparse_coo_tensor([[0]], [1.0], (2,), check_invariants=True)
    with pytest.raises(RuntimeError):
        opt.step()
    assert opt.param_groups[0]["eps"] == 1e-3


def test_adam_eps_refuses_capturable_and_defaults_to_the_ablations_eps():
    with pytest.raises(ValueError, match="capturable"):
        AdamEps([torch.nn.Parameter(torch.zeros(1))], capturable=True)
    assert AdamEps([torch.nn.Parameter(torch.zeros(1))]).defaults["eps"] == 1e-4
