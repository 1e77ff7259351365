"""Models and schedules of the experiments: LayerNorm placement, causality, ResNet shapes, run schedules."""

import pytest
import torch

from radam.experiments import get_config
from radam.experiments.models import ResNet, TransformerLM
from radam.experiments.optimizers import build_optimizer, frozen_steps, schedule_factor
from radam.variants import AdamEps


def _block_outputs(model, tokens):
    outputs = []
    hooks = [block.register_forward_hook(lambda m, i, o: outputs.append(o)) for block in model.blocks]
    model(tokens)
    for h in hooks:
        h.remove()
    return outputs


@pytest.mark.parametrize("pre_ln", [False, True])
def test_layernorm_placement(pre_ln):
    torch.manual_seed(0)
    model = TransformerLM(width=16, layers=2, heads=2, dropout=0.0, max_length=8, pre_ln=pre_ln).eval()
    tokens = torch.randint(0, 256, (3, 8))
    for out in _block_outputs(model, tokens):
        normalised = torch.allclose(out.mean(-1), torch.zeros(3, 8), atol=1e-5) and torch.allclose(
            out.var(-1, unbiased=False), torch.ones(3, 8), atol=1e-3
        )
        # post-LN: every block ends with a LayerNorm (at init its gain is 1 and bias 0); pre-LN: the residual
        # stream is never normalised, only a final LayerNorm before the output layer.
        assert normalised is (not pre_ln)
    assert isinstance(model.final_norm, torch.nn.LayerNorm) is pre_ln


def test_transformer_is_causal():
    torch.manual_seed(0)
    model = TransformerLM(width=16, layers=2, heads=2, dropout=0.0, max_length=10).eval()
    tokens = torch.randint(0, 256, (1, 10))
    changed = tokens.clone()
    changed[0, 6] = (changed[0, 6] + 1) % 256
    a, b = model(tokens), model(changed)
    assert torch.equal(a[0, :6], b[0, :6]) and not torch.allclose(a[0, 6:], b[0, 6:])
    with pytest.raises(ValueError, match="max_length"):
        model(torch.zeros(1, 11, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        TransformerLM(width=10, heads=4)


def test_resnet_depth_and_output():
    model = ResNet(depth=14, width=4, in_channels=1)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 1 + 12 + 2  # stem, 6 blocks, 2 shortcuts
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        ResNet(depth=10)


def test_run_schedules():
    config = get_config("lr-robustness", "full")  # 1500 steps, x0.1 at 750 and 1125, beta2 = 0.98: 4u = 200 steps
    factor = schedule_factor(config.optimizer("adam-warmup-4u"), config)
    assert [factor(s) for s in (0, 99, 199, 749, 750, 1124, 1125)] == pytest.approx(
        [0.005, 0.5, 1.0, 1.0, 0.1, 0.1, 0.01]
    )
    untuned = schedule_factor(config.optimizer("adam-warmup-2u"), config)  # 2/(1 - 0.98) = 100 steps
    assert untuned(0) == pytest.approx(1 / 100) and untuned(99) == 1.0 and untuned(750) == pytest.approx(0.1)
    lm = get_config("transformer-warmup", "default")  # 300 steps, constant until 45 (15 %), then linear to 0
    spec = lm.optimizer("adam-2k")
    k = frozen_steps(spec)
    assert k == 20  # 2/(1 - 0.9)
    f = schedule_factor(spec, lm)
    assert f(0) == f(k) == f(k + 45) == 1.0  # the freeze, then the constant part, not counting the frozen steps
    assert f(k + 45 + 255 // 2) == pytest.approx(1 - (255 // 2) / 255) and f(k + 300) == 0.0
    warm = schedule_factor(lm.optimizer("adam-warmup-4u"), lm)
    assert warm(0) == pytest.approx(1 / 40) and warm(39) == warm(45) == 1.0 and warm(46) < 1.0
    params = [torch.nn.Parameter(torch.zeros(2))]
    paper_eps = build_optimizer(lm.optimizer("adam-eps"), params, 1e-3, lm)
    torch_eps = build_optimizer(lm.optimizer("adam-eps-torch"), params, 1e-3, lm)
    assert type(paper_eps) is AdamEps and type(torch_eps) is torch.optim.Adam
    assert paper_eps.param_groups[0]["eps"] == torch_eps.param_groups[0]["eps"] == 1e-4
    assert build_optimizer(spec, params, 1e-3, lm).param_groups[0]["freeze_steps"] == k
