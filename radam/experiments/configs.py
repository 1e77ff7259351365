"""The named experiments: one configuration per experiment and size (``tiny`` for tests, ``default`` for a CPU,
``full`` for one GPU), all plain data so a configuration is stored verbatim in every result file.

Sizes: ``tiny`` runs in seconds and exists for the tests; ``default`` is the CPU-sized run whose results the book
ships; ``full`` (``--full``) is the GPU-sized run, split into named parts
(:meth:`~radam.experiments.specs.ExperimentConfig.parts`, one per learning rate) that each fit in a few minutes on one
H100 or H200.

**One scaling rule for every warmup-like length.** Adam's second moment averages about :math:`u = 1/(1-\\beta_2)`
squared gradients, and every length below is a multiple of that unit (:func:`radam.schedules.warmup_length`), with
the multiples of the paper's recipe for the post-LN Transformer (official repository, ``nmt/recipes.md``: a linear
warmup over 4000 steps and Adam-2k frozen for 2000 steps, at :math:`\\beta_2 = 0.999`):

* linear warmup over :math:`4u` steps (``specs.RECIPE_WARMUP_UNITS``), Adam-2k frozen for :math:`2u`
  (``specs.FREEZE_UNITS``);
* Ma and Yarats' untuned linear warmup over :math:`2u` (its definition, ``specs.UNTUNED_UNITS``);
* RAdam's own rectifier, which withholds about :math:`1.03u` steps of learning rate, as much as a linear warmup over
  :math:`2.06u` steps (:func:`radam.schedules.effective_warmup_period`).

**Warmups are short against the run.** In every named configuration each optimizer's warmup
(:func:`~radam.experiments.specs.warmup_span`) ends within ``specs.MAX_WARMUP_SHARE`` = 15 % of the steps and before
the learning rate first decays; :func:`get_config` checks it
(:meth:`~radam.experiments.specs.ExperimentConfig.check_warmups`). The CPU sizes therefore use a small
:math:`\\beta_2` (0.9: :math:`u = 10` steps), so that a run of a few hundred steps is long against its warmups.
"""

from __future__ import annotations

from radam import schedules
from radam.experiments.specs import (  # noqa: F401  (the types are also radam.experiments.configs.NAME)
    FREEZE_UNITS,
    MAX_WARMUP_SHARE,
    RECIPE_WARMUP_UNITS,
    SIZES,
    UNTUNED_UNITS,
    ExperimentConfig,
    OptimizerSpec,
    warmup_span,
)

__all__ = ["EXPERIMENTS", "get_config", "describe"]


# --------------------------------------------------------------------------------------------------------------------
# The optimizers. A label means one configuration in every experiment: all Adam-family optimizers decay weights
# decoupled, as in the paper's experiments; the warmups are named by their length in units of 1/(1 - beta2).

_DECOUPLED = {"decoupled_weight_decay": True}


def _adam() -> OptimizerSpec:
    return OptimizerSpec("adam", "adam", _DECOUPLED, description="Adam, no warmup (the paper's Adam-vanilla)")


def _adam_linear_warmup(units: int, beta2: float, note: str = "") -> OptimizerSpec:
    steps = schedules.warmup_length(units, beta2)
    return OptimizerSpec(
        f"adam-warmup-{units}u",
        "adam",
        _DECOUPLED,
        warmup="linear",
        warmup_steps=steps,
        description=f"Adam, linear warmup over {units}/(1-beta2) = {steps} steps{note}",
    )


def _adam_untuned(beta2: float) -> OptimizerSpec:
    steps = schedules.warmup_length(UNTUNED_UNITS, beta2)
    return OptimizerSpec(
        f"adam-warmup-{UNTUNED_UNITS}u",
        "adam",
        _DECOUPLED,
        warmup="untuned-linear",
        description=f"Adam, Ma and Yarats' untuned linear warmup over 2/(1-beta2) = {steps} steps",
    )


def _adam_2k(beta2: float) -> OptimizerSpec:
    freeze = schedules.warmup_length(FREEZE_UNITS, beta2)
    return OptimizerSpec(
        "adam-2k",
        "adam2k",
        {**_DECOUPLED, "freeze_steps": freeze},
        description=f"Adam-2k: only v is updated for the first {FREEZE_UNITS}/(1-beta2) = {freeze} steps (not "
        "counted in the step axis)",
    )


def _radam() -> OptimizerSpec:
    return OptimizerSpec(
        "radam",
        "radam",
        _DECOUPLED,
        description="RAdam with decoupled weight decay and momentum-SGD first steps, as in the paper's experiments",
    )


def _radam_skip() -> OptimizerSpec:
    return OptimizerSpec(
        "radam-skip",
        "radam",
        {"degenerate": "skip", **_DECOUPLED},
        description="RAdam with decoupled weight decay and its first steps skipped, as the official "
        "code's default since 2021",
    )


# --------------------------------------------------------------------------------------------------------------------
# transformer-warmup: the paper's Figure 1 (Adam without warmup fails on a post-LN Transformer)


def _transformer_optimizers(beta2: float) -> tuple[OptimizerSpec, ...]:
    return (
        _adam(),
        _adam_linear_warmup(RECIPE_WARMUP_UNITS, beta2, " (the paper's recipe)"),
        _adam_untuned(beta2),
        _adam_2k(beta2),
        OptimizerSpec(
            "adam-eps",
            "adam-eps",
            {**_DECOUPLED, "eps": 1e-4},
            description="Adam-eps as the paper ran it: eps = 1e-4 added to sqrt(v_t) before the bias correction",
        ),
        OptimizerSpec(
            "adam-eps-torch",
            "adam",
            {**_DECOUPLED, "eps": 1e-4},
            description="Adam-eps with torch.optim.Adam's placement: eps = 1e-4 added after the bias correction",
        ),
        _radam(),
        _radam_skip(),
    )


def _transformer_warmup(size: str) -> ExperimentConfig:
    description = (
        "Figure 1 of the paper: a post-LayerNorm Transformer (byte-level language model) trained by Adam with and "
        "without warmup (the paper's 4/(1-beta2) and Ma and Yarats' untuned 2/(1-beta2)), Adam-2k, Adam-eps and "
        "RAdam (momentum or skipped first steps)"
    )
    common = dict(
        name="transformer-warmup",
        size=size,
        task="language-model",
        description=description,
        weight_decay=1e-4,
        decay="linear",
        decay_milestones=(MAX_WARMUP_SHARE,),
    )
    if size == "tiny":
        return ExperimentConfig(
            **common,
            data={"source": "stdlib", "max_bytes": 20_000, "length": 16},
            model={"width": 16, "layers": 2, "heads": 2, "dropout": 0.0, "pre_ln": False},
            optimizers=_transformer_optimizers(0.5),
            lrs=(1e-3,),
            seeds=(0,),
            steps=60,
            batch_size=4,
            betas=(0.9, 0.5),
            log_every=10,
            eval_every=30,
            eval_batches=2,
            checkpoint_every=10,
        )
    if size == "default":
        return ExperimentConfig(
            **common,
            data={"source": "stdlib", "max_bytes": 2_000_000, "length": 64},
            model={"width": 64, "layers": 4, "heads": 4, "hidden": 128, "dropout": 0.1, "pre_ln": False},
            optimizers=_transformer_optimizers(0.9),
            # beta2 = 0.9 (u = 10 steps): the recipe's warmup is 40 steps, 13 % of the 300, and ends before the
            # decay starts at step 45. CPU probes (seed 0, 300 steps; validation loss in nats per byte, unigram
            # level 3.15): Adam trains at 3e-3 (2.31) and fails at 5e-3 (2.92), where the recipe's warmup trains
            # (2.32); at 7e-3 and 1e-2 both fail (2.96 and 2.97; 3.12 and 3.01). One run takes about 21 s on one
            # core of a 2-core x86-64 CPU (1.1 GFLOP per step, 70 ms), so the CPU size trains at the learning rate
            # where Adam fails, with five seeds (40 runs, about 7 minutes with --jobs 2).
            lrs=(5e-3,),
            seeds=(0, 1, 2, 3, 4),
            steps=300,
            batch_size=16,
            betas=(0.9, 0.9),
            log_every=10,
            eval_every=50,
            eval_batches=8,
            checkpoint_every=50,
        )
    return ExperimentConfig(
        **common,
        data={"source": "stdlib", "max_bytes": None, "length": 128},
        model={"width": 512, "layers": 6, "heads": 8, "hidden": 1024, "dropout": 0.1, "pre_ln": False},
        optimizers=_transformer_optimizers(0.98),
        # beta2 = 0.98 (u = 50 steps): the recipe's warmup is 200 steps, 13 % of the 1500. A CPU probe of this model
        # (beta2 = 0.99, seed 0, 100 steps, no decay; validation loss in nats per byte, unigram level about 3.2):
        # Adam trains at 3e-4 (2.76) and stalls at 1e-3 (3.22) and 3e-3 (3.27); RAdam trains at 3e-4 (2.66) and
        # 1e-3 (2.61) and stalls at 3e-3 (3.26). So the grid has both sides of Adam's failure (the CPU size has only
        # its failing side).
        # GPU time, estimated (not measured): a step is 166 GFLOP (forward and backward, counted by torch's
        # FlopCounterMode; the CPU size's step is 1.1 GFLOP and takes 70 ms on one CPU core). At an assumed 25 TFLOP/s
        # sustained on one H100 or H200 (a few percent of its TF32 peak: small matrices, eight processes launching
        # kernels from Python), each of the six parts (20 runs of 1500 steps, 5.0 PFLOP) takes about 3.3 minutes,
        # the 120 runs about 20 minutes. On a Colab T4 (fp32, about 3 TFLOP/s sustained) the whole experiment takes
        # about 2.8 hours.
        lrs=(3e-4, 1e-3, 3e-3),
        seeds=(0, 1, 2, 3, 4),
        steps=1500,
        batch_size=16,
        betas=(0.9, 0.98),
        log_every=10,
        eval_every=100,
        eval_batches=16,
        checkpoint_every=100,
        parts_per_lr=2,
    )


# --------------------------------------------------------------------------------------------------------------------
# gradient-histograms: Figures 2-3 (log|g| and log|update| over the first hundred steps)


def _gradient_histograms(size: str) -> ExperimentConfig:
    base = _transformer_warmup(size)
    keep = ("adam", f"adam-warmup-{RECIPE_WARMUP_UNITS}u", "adam-2k", "adam-eps", "adam-eps-torch", "radam")
    optimizers = tuple(spec for spec in base.optimizers if spec.label in keep)
    histogram_steps = {"tiny": (1, 2, 5, 10, 30, 60)}.get(size, (1, 2, 5, 10, 25, 50, 75, 100))
    # The experiment's own runs at the learning rate where Adam without warmup fails (one seed), with histograms
    # recorded early on. Full size: 6 runs of 1500 steps, 1.5 PFLOP, about a minute on an H100 at the transformer's
    # assumed 25 TFLOP/s (estimated), one part; about 8 minutes on a Colab T4.
    return base.replace(
        name="gradient-histograms",
        description=(
            "Figures 2-3 of the paper: histograms of log|gradient| and log|update| of all parameters over the first "
            "steps, for Adam with and without warmup, Adam-2k, Adam-eps and RAdam on the post-LN Transformer"
        ),
        optimizers=optimizers,
        lrs=(base.lrs[-1],) if size != "full" else (base.lrs[1],),  # where Adam without warmup fails
        seeds=(0,),
        histogram_steps=histogram_steps,
        parts_per_lr=1,
    )


# --------------------------------------------------------------------------------------------------------------------
# lr-robustness: Figures 6-7 (a residual CNN over four learning rates, and linear warmups of several lengths)


def _image_optimizers(beta2: float) -> tuple[OptimizerSpec, ...]:
    return (
        OptimizerSpec("sgd", "sgd", {"momentum": 0.9}, description="SGD with momentum 0.9 (L2 weight decay)"),
        _adam(),
        _adam_linear_warmup(1, beta2),
        _adam_untuned(beta2),
        _adam_linear_warmup(RECIPE_WARMUP_UNITS, beta2, " (the paper's recipe)"),
        _radam(),
    )


def _lr_robustness(size: str) -> ExperimentConfig:
    description = (
        "Figures 6-7 of the paper: a small residual CNN trained by SGD with momentum, Adam without warmup and with "
        "linear warmups over 1, 2 (Ma and Yarats' untuned) and 4 (the paper's recipe) units of 1/(1-beta2) steps, "
        "and RAdam, at learning rates 0.1, 0.03, 0.01 and 0.003; test accuracy"
    )
    common = dict(
        name="lr-robustness",
        size=size,
        task="image-classification",
        description=description,
        lrs=(0.1, 0.03, 0.01, 0.003),
        weight_decay=1e-4,
        decay="step",
        decay_milestones=(0.5, 0.75),
    )
    if size == "tiny":
        return ExperimentConfig(
            **common,
            data={"source": "digits", "size": 8, "augment_padding": 1},
            model={"depth": 8, "width": 4},
            optimizers=_image_optimizers(0.5),
            seeds=(0,),
            steps=60,
            batch_size=16,
            betas=(0.9, 0.5),
            log_every=10,
            eval_every=30,
            checkpoint_every=10,
        )
    if size == "default":
        # CPU size: the digits at their own 8x8 resolution, 300 steps, beta2 = 0.9 (u = 10 steps): the longest
        # warmup (40 steps) is 13 % of the run and ends long before the first decay (step 150). One run takes about
        # 4 s on one core (13 ms per step); the 144 runs about 5 minutes with --jobs 2.
        return ExperimentConfig(
            **common,
            data={"source": "digits", "size": 8, "augment_padding": 1},
            model={"depth": 8, "width": 8},
            optimizers=_image_optimizers(0.9),
            seeds=(0, 1, 2, 3, 4, 5),
            steps=300,
            batch_size=32,
            betas=(0.9, 0.9),
            log_every=10,
            eval_every=100,
            checkpoint_every=100,
        )
    return ExperimentConfig(
        **common,
        data={"source": "digits", "size": 32, "augment_padding": 4},
        model={"depth": 20, "width": 16},
        optimizers=_image_optimizers(0.98),
        # beta2 = 0.98 (u = 50 steps): the longest warmup (200 steps) is 13 % of the 1500 steps.
        # GPU time, estimated (not measured): a step of ResNet-20 on 128 images of 32x32 is 31 GFLOP (forward and
        # backward, torch's FlopCounterMode). At an assumed 10 TFLOP/s sustained on one H100 or H200 (small
        # convolutions), each of the four parts (one learning rate: 30 runs of 1500 steps, 1.4 PFLOP) takes about
        # 2.3 minutes, the 120 runs about 9 minutes. On a Colab T4 (about 2 TFLOP/s) about 47 minutes.
        seeds=(0, 1, 2, 3, 4),
        steps=1500,
        batch_size=128,
        betas=(0.9, 0.98),
        log_every=10,
        eval_every=100,
        checkpoint_every=100,
    )


EXPERIMENTS = {
    "transformer-warmup": _transformer_warmup,
    "gradient-histograms": _gradient_histograms,
    "lr-robustness": _lr_robustness,
}


def get_config(name: str, size: str = "default") -> ExperimentConfig:
    """The configuration of experiment ``name`` at ``size`` (``"tiny"``, ``"default"`` or ``"full"``), checked:
    every warmup ends within 15 % of the run and before the first decay
    (:meth:`~radam.experiments.specs.ExperimentConfig.check_warmups`)."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; the experiments are {sorted(EXPERIMENTS)}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    config = EXPERIMENTS[name](size)
    config.check_warmups()
    return config


def describe(name: str) -> str:
    """One paragraph: what the experiment shows and how many runs each size has."""
    config = get_config(name)
    counts = ", ".join(f"{size}: {len(get_config(name, size).run_keys())} runs" for size in SIZES)
    return f"{config.description} ({counts})"
