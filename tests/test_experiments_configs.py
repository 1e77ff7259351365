"""The experiments' configurations: one scaling rule for every warmup, every warmup short against its run and over
before the first decay (for every experiment and size), labels that mean one configuration, parts that cover the
runs."""

import math

import pytest

from radam import schedules
from radam.experiments import EXPERIMENTS, OptimizerSpec, get_config
from radam.experiments.configs import (
    FREEZE_UNITS,
    MAX_WARMUP_SHARE,
    RECIPE_WARMUP_UNITS,
    SIZES,
    UNTUNED_UNITS,
    warmup_span,
)

CONFIGS = [(name, size) for name in EXPERIMENTS for size in SIZES]


@pytest.mark.parametrize("name, size", CONFIGS)
def test_every_warmup_is_short_and_ends_before_the_first_decay(name, size):
    config = get_config(name, size)
    beta2 = config.betas[1]
    assert UNTUNED_UNITS / (1 - beta2) <= MAX_WARMUP_SHARE * config.steps
    decay = config.first_decay_step()
    assert decay is not None and decay >= MAX_WARMUP_SHARE * config.steps - 1e-9
    for spec in config.optimizers:
        span = warmup_span(spec, beta2)
        assert span <= MAX_WARMUP_SHARE * config.steps, (spec.label, span)
        assert span <= decay, (spec.label, span, decay)
    assert config.warmup_problems() == []


@pytest.mark.parametrize("name, size", CONFIGS)
def test_every_warmup_length_follows_the_scaling_rule(name, size):
    config = get_config(name, size)
    beta2 = config.betas[1]
    for spec in config.optimizers:
        if spec.warmup == "linear":
            units = int(spec.label.removeprefix("adam-warmup-").removesuffix("u"))
            assert spec.warmup_steps == schedules.warmup_length(units, beta2)
        if spec.warmup == "untuned-linear":
            assert spec.label == f"adam-warmup-{UNTUNED_UNITS}u"
        if spec.kind == "adam2k":
            assert spec.options["freeze_steps"] == schedules.warmup_length(FREEZE_UNITS, beta2)
    recipe = config.optimizer(f"adam-warmup-{RECIPE_WARMUP_UNITS}u")
    assert recipe.warmup_steps == round(RECIPE_WARMUP_UNITS / (1 - beta2))


def test_a_label_means_one_configuration_in_every_experiment():
    seen = {}
    for name, size in CONFIGS:
        for spec in get_config(name, size).optimizers:
            # the beta2-derived lengths differ between sizes; everything else must not
            options = {k: v for k, v in spec.options.items() if k != "freeze_steps"}
            key = (spec.kind, tuple(sorted(options.items())), spec.warmup)
            assert seen.setdefault(spec.label, key) == key, spec.label
    assert seen["radam"] != seen["radam-skip"]
    assert dict(seen["radam"][1])["decoupled_weight_decay"] is True


def test_warmup_spans():
    assert warmup_span(OptimizerSpec("a", "adam"), 0.9) == 0
    assert warmup_span(OptimizerSpec("a", "adam", warmup="linear", warmup_steps=37), 0.9) == 37
    assert warmup_span(OptimizerSpec("a", "adam", warmup="untuned-linear"), 0.999) == 2000
    assert warmup_span(OptimizerSpec("a", "adam2k", {"freeze_steps": 20}), 0.9) == 20
    # RAdam at beta2 = 0.999, threshold 5: 5 non-adaptive steps, then a rectifier that withholds T = 1028.3 steps of
    # learning rate, as much as a linear warmup over 2 T + 1 steps
    period = schedules.effective_warmup_period(schedules.radam_warmup(0.999, threshold=5.0), 20_000)
    assert period == pytest.approx(1028.3, abs=0.05)
    assert warmup_span(OptimizerSpec("r", "radam"), 0.999) == 5 + math.ceil(2 * period + 1)
    assert warmup_span(OptimizerSpec("r", "radam", {"threshold": 4.0}), 0.999) == 4 + math.ceil(2 * 1029.32 + 1)
    # an exponential warmup counts as the linear warmup that withholds as much: about 2/(1-beta2)
    # (T = 1/(e^0.01 - 1) = 99.5008, so 2 T + 1 = 200.002, rounded up)
    assert warmup_span(OptimizerSpec("a", "adam", warmup="untuned-exponential"), 0.99) == 201


def test_a_long_warmup_is_refused_naming_it():
    config = get_config("lr-robustness")
    long = OptimizerSpec("adam-warmup-long", "adam", warmup="linear", warmup_steps=100)
    bad = config.replace(optimizers=config.optimizers + (long,))
    with pytest.raises(ValueError, match=r"adam-warmup-long: its warmup of 100 steps is more than 15% of the 300"):
        bad.check_warmups()
    late = config.replace(decay_milestones=(0.1, 0.75))
    with pytest.raises(ValueError, match=r"adam-warmup-4u: its warmup of 40 steps runs into the decay at step 30"):
        late.check_warmups()


@pytest.mark.parametrize("name, size", CONFIGS)
def test_parts_cover_the_runs_once(name, size):
    config = get_config(name, size)
    parts = config.parts()
    k = config.parts_per_lr
    assert list(parts) == [
        f"lr{lr:g}" if k == 1 else f"lr{lr:g}-{i}of{k}" for lr in config.lrs for i in range(1, k + 1)
    ]
    assert all(parts.values())
    keys = [key for part in parts.values() for key in part]
    assert sorted(keys) == sorted(config.run_keys()) and len(keys) == len(set(keys))


def test_full_transformer_parts_split_each_learning_rate_in_two():
    parts = get_config("transformer-warmup", "full").parts()
    assert len(parts) == 6 and all(len(runs) == 20 for runs in parts.values())
    assert {key[0] for key in parts["lr0.001-1of2"]}.isdisjoint(key[0] for key in parts["lr0.001-2of2"])


def _document(values):
    """A minimal result document: {(label, lr): [metric per seed]}."""
    runs = [
        {"optimizer": label, "lr": lr, "seed": seed, "metrics": {"final_test_accuracy": value}}
        for (label, lr), per_seed in values.items()
        for seed, value in enumerate(per_seed)
    ]
    return {"experiment": "x", "config": {"task": "image-classification"}, "runs": runs}


def test_paired_difference_is_a_t_interval_over_seeds():
    from scipy import stats

    from radam.experiments import paired_difference

    doc = _document({("a", 0.1): [0.90, 0.92, 0.95, 0.91], ("b", 0.1): [0.88, 0.91, 0.92, 0.90]})
    result = paired_difference(doc, ("a", 0.1), ("b", 0.1))
    d = [0.02, 0.01, 0.03, 0.01]
    half = stats.t.ppf(0.975, 3) * stats.tstd(d) / 2
    assert result["n"] == 4 and result["mean"] == pytest.approx(0.0175)
    assert result["low"] == pytest.approx(0.0175 - half) and result["high"] == pytest.approx(0.0175 + half)
    # pairing removes the seed effect that the two means share: the unpaired (Welch) interval is twice as wide
    a, b = [0.90, 0.92, 0.95, 0.91], [0.88, 0.91, 0.92, 0.90]
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert 2 * (result["high"] - result["low"]) < welch.high - welch.low
    # a diverged run drops its seed; too few seeds is an error that names the settings
    doc["runs"][0]["metrics"]["final_test_accuracy"] = None
    assert paired_difference(doc, ("a", 0.1), ("b", 0.1))["n"] == 3
    with pytest.raises(ValueError, match="fewer than two seeds"):
        paired_difference(_document({("a", 0.1): [0.9], ("b", 0.1): [0.8]}), ("a", 0.1), ("b", 0.1))
    with pytest.raises(KeyError, match="no runs of 'c' at lr 0.1"):
        paired_difference(doc, ("c", 0.1), ("b", 0.1))
