r"""The training loop of one run (one optimiser, one learning rate, one seed), with checkpoints that make an
interrupted run resume to exactly the numbers of an uninterrupted one.

**Determinism.** The model is initialised right after ``torch.manual_seed(seed)``; batches come from the task's own
seeded generator; dropout draws from the global generator. A checkpoint holds the model, optimiser and scheduler
state, both generators' states, the step and the metrics so far, and is written only at the end of a logging window
(so no partial window sum is lost). Resuming restores all of it and replays nothing.

**Metrics.** Every ``log_every`` steps the mean training loss of the window is logged, every ``eval_every`` steps the
task's evaluation. Steps are counted from the first step that moves the parameters (``aligned`` steps): Adam-2k's
frozen steps get the numbers :math:`1-k, \dots, 0`. A non-finite window loss ends the run as *diverged*.

**Histograms** (``histogram_steps``): at the listed aligned steps the loop bins the natural logarithm of the
magnitudes of all gradient entries and of all parameter updates :math:`\Delta\theta`,

.. math:: \text{counts}_j = \#\{\, i : e_j \le \log |x_i| < e_{j+1} \,\}, \qquad x_i \ne 0,

where values below the first edge or above the last are clamped into the outermost bins, and exact zeros are
counted apart. The JSON keeps these counts, never the raw tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from radam.atomic import atomic_open
from radam.experiments.optimizers import build_optimizer, frozen_steps, schedule_factor
from radam.experiments.specs import ExperimentConfig
from radam.experiments.tasks import Task

__all__ = ["train_run", "log_magnitude_histogram", "StepCallback"]

StepCallback = Callable[[str, int], None]
"""Called as ``callback(run_id, step)`` after every completed step (after any checkpoint of that step)."""


def log_magnitude_histogram(values: Tensor, low: float, high: float, bins: int) -> tuple[list[int], int]:
    """Counts of ``log|x|`` in ``bins`` equal bins over ``[low, high]`` (outliers clamped in), and the zero count."""
    flat = values.detach().reshape(-1).double()
    nonzero = flat[flat != 0]
    zeros = flat.numel() - nonzero.numel()
    logs = torch.log(nonzero.abs()).clamp(low, high)
    counts = torch.histc(logs, bins=bins, min=low, max=high)
    return [int(c) for c in counts.round().long().cpu()], int(zeros)


def _flat_grads(model: nn.Module) -> Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def _flat_params(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _save_atomically(obj: Any, path: Path) -> None:
    with atomic_open(path, "wb") as file:
        torch.save(obj, file)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _new_metrics(config: ExperimentConfig) -> dict[str, Any]:
    metrics: dict[str, Any] = {"log_steps": [], "train_loss": [], "eval_steps": [], "diverged_at": None}
    for key in _eval_keys(config):
        metrics[key] = []
    if config.histogram_steps:
        low, high = config.histogram_range
        edges = torch.linspace(low, high, config.histogram_bins + 1, dtype=torch.float64)
        metrics["histograms"] = {
            "edges": [round(float(e), 10) for e in edges],
            "steps": [],
            "gradient": [],
            "gradient_zeros": [],
            "update": [],
            "update_zeros": [],
        }
    return metrics


def _eval_keys(config: ExperimentConfig) -> tuple[str, ...]:
    return ("valid_loss",) if config.task == "language-model" else ("test_accuracy", "test_loss")


def train_run(
    config: ExperimentConfig,
    label: str,
    lr: float,
    seed: int,
    task: Task,
    device: torch.device,
    checkpoint: Path | None = None,
    step_callback: StepCallback | None = None,
    progress: Callable[[int], None] | None = None,
    run_id: str = "",
) -> dict[str, Any]:
    """Train one run to the end and return its metrics (see the module docstring).

    If ``checkpoint`` exists the run resumes from it; checkpoints are written there every ``checkpoint_every``
    steps. ``progress(n)`` is told about every ``n`` completed steps (a tqdm bar's ``update``).
    """
    spec = config.optimizer(label)
    offset = frozen_steps(spec)
    total_steps = config.steps + offset

    torch.manual_seed(seed)
    model = task.make_model().to(device)
    task.reset_sampler(seed)
    optimizer = build_optimizer(spec, model.parameters(), lr, config)
    scheduler = LambdaLR(optimizer, schedule_factor(spec, config))
    metrics = _new_metrics(config)
    start = 0
    if checkpoint is not None and checkpoint.exists():
        try:
            # Load on the CPU: RNG and sampler states must stay CPU tensors; load_state_dict moves the rest to the
            # device.
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
        except Exception as error:  # noqa: BLE001 - any failure here means the file cannot be used
            raise RuntimeError(f"checkpoint {checkpoint} cannot be loaded ({error!r}); delete it to restart") from error
        task.load_sampler_state(saved["sampler"])
        _set_rng_state(saved["rng"], device)
        metrics = saved["metrics"]
        start = int(saved["step"])
        if progress is not None:
            progress(start)

    low, high = config.histogram_range
    histogram_steps = set(config.histogram_steps)
    window_sum = torch.zeros((), dtype=torch.float64, device=device)
    window_count = 0
    model.train()
    for s in range(start, total_steps):
        step = s + 1
        aligned = step - offset
        batch = task.next_batch()
        loss = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        record = aligned in histogram_steps
        if record:
            before = _flat_params(model).clone()
            counts, zeros = log_magnitude_histogram(_flat_grads(model), low, high, config.histogram_bins)
        optimizer.step()
        scheduler.step()
        if record:
            update_counts, update_zeros = log_magnitude_histogram(
                _flat_params(model) - before, low, high, config.histogram_bins
            )
            hist = metrics["histograms"]
            hist["steps"].append(aligned)
            hist["gradient"].append(counts)
            hist["gradient_zeros"].append(zeros)
            hist["update"].append(update_counts)
            hist["update_zeros"].append(update_zeros)
        window_sum += loss.detach().double()
        window_count += 1

        if step % config.log_every == 0 or step == total_steps:
            mean = float(window_sum) / window_count
            window_sum.zero_()
            window_count = 0
            metrics["log_steps"].append(aligned)
            metrics["train_loss"].append(mean if math.isfinite(mean) else None)
            if not math.isfinite(mean):
                metrics["diverged_at"] = aligned
                if progress is not None:
                    progress(total_steps - step + 1)  # this step and the ones it will not take
                break
        if aligned > 0 and (aligned % config.eval_every == 0 or step == total_steps):
            metrics["eval_steps"].append(aligned)
            for key, value in task.evaluate(model).items():
                metrics[key].append(value if math.isfinite(value) else None)
        if checkpoint is not None and step % config.checkpoint_every == 0 and step < total_steps:
            _save_atomically(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "sampler": task.sampler_state(),
                    "rng": _rng_state(device),
                    "metrics": metrics,
                    "step": step,
                },
                checkpoint,
            )
        if progress is not None:
            progress(1)
        if step_callback is not None:
            step_callback(run_id, step)

    finals: dict[str, Any] = {}
    for key in _eval_keys(config):
        values = metrics[key]
        finals[f"final_{key}"] = values[-1] if values and metrics["diverged_at"] is None else None
    metrics.update(finals)
    losses = [v for v in metrics["train_loss"] if v is not None]
    metrics["final_train_loss"] = losses[-1] if losses and metrics["diverged_at"] is None else None
    return metrics
