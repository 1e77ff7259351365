r"""What an experiment is: its optimizers (:class:`~radam.experiments.specs.OptimizerSpec`) and everything else that
determines its numbers (:class:`~radam.experiments.specs.ExperimentConfig`), as plain frozen data that is stored
verbatim in every result file; and how long each optimizer warms up
(:func:`~radam.experiments.specs.warmup_span`), in units of :math:`u = 1/(1-\beta_2)` steps (see
:mod:`radam.experiments.configs`, which names the book's experiments).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from radam import schedules, theory

__all__ = [
    "OptimizerSpec",
    "ExperimentConfig",
    "SIZES",
    "RECIPE_WARMUP_UNITS",
    "FREEZE_UNITS",
    "UNTUNED_UNITS",
    "MAX_WARMUP_SHARE",
    "warmup_span",
]

SIZES = ("tiny", "default", "full")
WARMUPS = ("none", "linear", "untuned-linear", "untuned-exponential", "radam")
KINDS = ("adam", "adam2k", "adam-eps", "radam", "sgd")
TASKS = ("language-model", "image-classification")
DECAYS = ("none", "linear", "step")

RECIPE_WARMUP_UNITS = 4  # the paper's linear warmup: 4000 steps at beta2 = 0.999
FREEZE_UNITS = 2  # the paper's Adam-2k: 2000 frozen steps at beta2 = 0.999
UNTUNED_UNITS = 2  # Ma and Yarats' untuned linear warmup: 2 / (1 - beta2) steps
MAX_WARMUP_SHARE = 0.15  # every warmup ends within this share of the run


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimiser of an experiment: ``kind`` picks the class, ``options`` its keyword arguments (beyond lr, betas
    and weight decay), ``warmup`` the LambdaLR warmup (``warmup_steps`` for ``"linear"``)."""

    label: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    warmup: str = "none"
    warmup_steps: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"optimizer {self.label!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.warmup not in WARMUPS:
            raise ValueError(f"optimizer {self.label!r}: warmup must be one of {WARMUPS}, got {self.warmup!r}")
        if self.warmup == "linear" and self.warmup_steps < 1:
            raise ValueError(f"optimizer {self.label!r}: linear warmup needs warmup_steps >= 1")


def _linear_equivalent(schedule: schedules.Schedule, beta2: float) -> int:
    """The length of the linear warmup that withholds as much learning rate, 2 T + 1 (T = effective period)."""
    horizon = int(math.ceil(20 / (1 - beta2)))
    return int(math.ceil(2 * schedules.effective_warmup_period(schedule, horizon) + 1))


def warmup_span(spec: OptimizerSpec, beta2: float) -> int:
    r"""How many steps an optimiser spends warming up before it runs at its full learning rate.

    A linear warmup lasts its ``warmup_steps``; the untuned linear one :math:`2/(1-\beta_2)`; a warmup that
    approaches 1 only asymptotically (the exponential one, RAdam's rectifier) counts as the linear warmup that
    withholds as much learning rate, :math:`2\mathcal{T} + 1` steps for an effective warmup period
    :math:`\mathcal{T}`; RAdam adds its non-adaptive first steps; Adam-2k adds its frozen steps.
    """
    if spec.warmup == "none":
        span = 0
    elif spec.warmup == "linear":
        span = spec.warmup_steps
    elif spec.warmup == "untuned-linear":
        span = int(math.ceil(UNTUNED_UNITS / (1 - beta2) - 1e-9))
    elif spec.warmup == "untuned-exponential":
        span = _linear_equivalent(schedules.untuned_exponential_warmup(beta2), beta2)
    else:
        span = _linear_equivalent(schedules.radam_warmup(beta2), beta2)
    if spec.kind == "radam":
        threshold = float(spec.options.get("threshold", 5.0))
        if theory.rho_inf(beta2) > threshold:
            delta = int(theory.first_adaptive_step(beta2, threshold))
            span += delta - 1 + _linear_equivalent(schedules.radam_warmup(beta2, threshold), beta2)
    if spec.kind == "adam2k":
        span += int(spec.options.get("freeze_steps", 0))
    return span


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's numbers (apart from the device and library versions).

    ``decay``: ``"none"``; ``"step"``, the learning rate divided by 10 at each fraction of ``decay_milestones``;
    ``"linear"``, constant until the first fraction of ``decay_milestones`` (0 if there is none), then linear to 0
    at the last step.
    """

    name: str
    size: str
    task: str
    description: str
    data: dict[str, Any]
    model: dict[str, Any]
    optimizers: tuple[OptimizerSpec, ...]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    steps: int
    batch_size: int
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    decay: str = "none"
    decay_milestones: tuple[float, ...] = ()
    clip_norm: float | None = None
    log_every: int = 10
    eval_every: int = 100
    eval_batches: int = 4
    checkpoint_every: int = 50
    histogram_steps: tuple[int, ...] = ()
    histogram_range: tuple[float, float] = (-30.0, 5.0)
    histogram_bins: int = 70
    parts_per_lr: int = 1

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        if self.decay == "linear" and len(self.decay_milestones) > 1:
            raise ValueError(f"a linear decay has one milestone (where it starts), got {self.decay_milestones}")
        if self.checkpoint_every % self.log_every != 0:
            raise ValueError(
                f"checkpoint_every ({self.checkpoint_every}) must be a multiple of log_every ({self.log_every}) so "
                "that a checkpoint never falls inside a logging window"
            )
        if not 1 <= self.parts_per_lr <= len(self.optimizers):
            raise ValueError(f"parts_per_lr must lie between 1 and the number of optimizers, got {self.parts_per_lr}")
        labels = [spec.label for spec in self.optimizers]
        if len(set(labels)) != len(labels):
            raise ValueError(f"optimizer labels must be unique, got {labels}")

    def run_keys(self) -> list[tuple[str, float, int]]:
        """Every (optimizer label, lr, seed) of the experiment, in the order they run."""
        return [(spec.label, lr, seed) for spec in self.optimizers for lr in self.lrs for seed in self.seeds]

    def parts(self) -> dict[str, list[tuple[str, float, int]]]:
        """The runs split into named parts, each runnable on its own: one per learning rate (``"lr0.001"``), or
        with ``parts_per_lr = k`` the optimizers of each learning rate in ``k`` groups (``"lr0.001-1of2"``)."""
        parts = {}
        k = self.parts_per_lr
        labels = [spec.label for spec in self.optimizers]
        for lr in self.lrs:
            for i in range(k):
                group = set(labels[i * len(labels) // k : (i + 1) * len(labels) // k])
                name = f"lr{lr:g}" if k == 1 else f"lr{lr:g}-{i + 1}of{k}"
                parts[name] = [key for key in self.run_keys() if key[1] == lr and key[0] in group]
        return parts

    def optimizer(self, label: str) -> OptimizerSpec:
        for spec in self.optimizers:
            if spec.label == label:
                return spec
        raise KeyError(
            f"experiment {self.name!r} has no optimizer {label!r}; it has {[s.label for s in self.optimizers]}"
        )

    def first_decay_step(self) -> int | None:
        """The first step whose learning rate is decayed (counted from the first step that moves the parameters)."""
        if self.decay == "none":
            return None
        return round(self.decay_milestones[0] * self.steps) if self.decay_milestones else 0

    def warmup_problems(self) -> list[str]:
        """Every optimizer whose warmup (:func:`~radam.experiments.specs.warmup_span`) is longer than
        ``MAX_WARMUP_SHARE`` of the run or
        runs into the first learning-rate decay, each named with its numbers; empty when there is none."""
        problems = []
        limit = MAX_WARMUP_SHARE * self.steps
        decay = self.first_decay_step()
        for spec in self.optimizers:
            span = warmup_span(spec, self.betas[1])
            if span > limit:
                problems.append(
                    f"{spec.label}: its warmup of {span} steps is more than {MAX_WARMUP_SHARE:.0%} of "
                    f"the {self.steps} steps"
                )
            if decay is not None and span > decay:
                problems.append(f"{spec.label}: its warmup of {span} steps runs into the decay at step {decay}")
        return problems

    def check_warmups(self) -> None:
        """Raise ``ValueError`` naming every warmup that is too long (:meth:`warmup_problems`)."""
        problems = self.warmup_problems()
        if problems:
            raise ValueError(f"{self.name} ({self.size}): " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return _jsonable(dataclasses.asdict(self))

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
