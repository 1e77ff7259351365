r"""Result files: one JSON document per experiment, written atomically, validated when read.

A result file holds ``schema`` (``SCHEMA``), ``experiment``, ``size``, ``provenance`` (command, package version
and git commit, device name, torch/Python/numpy versions, date, seeds), the full ``config`` and one entry per run
(``optimizer``, ``lr``, ``seed``, ``metrics``). :func:`load_results` rejects a file that is not JSON, is truncated,
has another schema version, or lacks a field, with an error that names the file and the problem.

:func:`summarize` reduces runs over seeds: for a final metric :math:`x_1, \dots, x_n` of the finite runs it reports
the mean and the sample standard deviation

.. math:: \bar x = \frac1n \sum_i x_i, \qquad s = \sqrt{\frac{1}{n-1} \sum_i (x_i - \bar x)^2}

(0 for :math:`n = 1`) and how many runs diverged. :func:`paired_difference` compares two settings seed by seed: runs
with the same seed start from the same initial weights and see the same batches, so the differences
:math:`d_i = x_i - y_i` carry less noise than the two means, and its interval is Student's t interval of their mean,

.. math:: \bar d \pm t_{n-1,\,(1+c)/2}\; \frac{s_d}{\sqrt n} .
"""

from __future__ import annotations

import datetime as _datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radam.atomic import write_json_atomically

__all__ = [
    "SCHEMA",
    "ResultsError",
    "provenance",
    "device_name",
    "hardware_name",
    "write_json_atomically",
    "load_results",
    "validate_results",
    "summarize",
    "paired_difference",
    "cache_path",
    "load_cached",
]

SCHEMA = "radam.experiments/1"
_RUN_KEYS = {"optimizer": str, "lr": (int, float), "seed": int, "metrics": dict}
_METRIC_KEYS = ("log_steps", "train_loss", "eval_steps", "diverged_at", "final_train_loss")
_TASK_METRICS = {
    "language-model": ("valid_loss", "final_valid_loss"),
    "image-classification": ("test_accuracy", "test_loss", "final_test_accuracy", "final_test_loss"),
}


class ResultsError(ValueError):
    """A result file cannot be used: not JSON, truncated, an old schema, or missing fields."""


def hardware_name(device: torch.device) -> str:
    """The hardware that computes: "cuda: " and the GPU model, or "cpu: " and the processor."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine() or 'unknown processor'}"


def device_name(device: torch.device, threads: int | None = None, processes: int = 1) -> str:
    """A readable name: :func:`hardware_name`, and how it computed: for CUDA the worker processes sharing the GPU,
    for the CPU the threads (``threads`` in each of ``processes`` worker processes; by default this process's torch
    threads) and the cores visible."""
    if device.type == "cuda":
        return hardware_name(device) + (f", {processes} processes" if processes > 1 else "")
    threads = torch.get_num_threads() if threads is None else threads
    workers = f" in each of {processes} processes" if processes > 1 else ""
    return f"{hardware_name(device)}, {threads} threads{workers}, {os.cpu_count()} cores visible"


def _git_commit() -> str:
    package_dir = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(package_dir), "status", "--porcelain", "--", "*.py"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + ("+uncommitted-changes" if dirty else "")


def provenance(
    device: torch.device, seeds: list[int], argv: list[str] | None = None, threads: int | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """Where a result came from: command, code version, device (:func:`device_name`), library versions, UTC date,
    seeds."""
    from radam import __version__

    argv = sys.argv if argv is None else argv
    return {
        "command": "python -m radam.experiments " + shlex.join(argv[1:]) if argv else "",
        "package_version": __version__,
        "git_commit": _git_commit(),
        "device": device_name(device, threads, processes),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "date": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds"),
        "seeds": list(seeds),
    }


def _fail(path: Path | str, problem: str) -> ResultsError:
    return ResultsError(f"result file {path}: {problem}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_list_of(value: Any, check: Any) -> bool:
    return isinstance(value, list) and all(check(item) for item in value)


def _is_metric(value: Any) -> bool:
    return value is None or _is_number(value)


def _check_config(config: dict[str, Any], path: Path | str) -> str:
    """Check the parts of ``config`` that reading the runs relies on; return the task."""
    task = config.get("task")
    if task not in _TASK_METRICS:
        raise _fail(path, f"config.task is {task!r}, expected one of {sorted(_TASK_METRICS)}")
    optimizers = config.get("optimizers")
    if not _is_list_of(optimizers, lambda spec: isinstance(spec, dict) and isinstance(spec.get("label"), str)):
        raise _fail(path, "config.optimizers must be a list of objects, each with a string 'label'")
    if not _is_list_of(config.get("lrs"), _is_number):
        raise _fail(path, "config.lrs must be a list of numbers")
    if not _is_list_of(config.get("seeds"), lambda seed: isinstance(seed, int) and not isinstance(seed, bool)):
        raise _fail(path, "config.seeds must be a list of integers")
    return task


def _check_metrics(metrics: dict[str, Any], task: str, where: str, path: Path | str, histograms: bool) -> None:
    for key in _METRIC_KEYS + _TASK_METRICS[task]:
        if key not in metrics:
            raise _fail(path, f"{where} lacks {key!r}")
    for key in ("log_steps", "eval_steps"):
        if not _is_list_of(metrics[key], lambda step: isinstance(step, int) and not isinstance(step, bool)):
            raise _fail(path, f"{where}: {key!r} must be a list of step numbers")
    series = ["train_loss"] + [key for key in _TASK_METRICS[task] if not key.startswith("final_")]
    for key in series:
        if not _is_list_of(metrics[key], _is_metric):
            raise _fail(path, f"{where}: {key!r} must be a list of numbers (or null where a run diverged)")
    if len(metrics["log_steps"]) != len(metrics["train_loss"]):
        raise _fail(path, f"{where}: log_steps and train_loss differ in length")
    for key in ["final_train_loss"] + [key for key in _TASK_METRICS[task] if key.startswith("final_")]:
        if not _is_metric(metrics[key]):
            raise _fail(path, f"{where}: {key!r} must be a number or null, got {metrics[key]!r}")
    diverged_at = metrics["diverged_at"]
    if diverged_at is not None and not (isinstance(diverged_at, int) and not isinstance(diverged_at, bool)):
        raise _fail(path, f"{where}: 'diverged_at' must be a step number or null, got {diverged_at!r}")
    if histograms and not isinstance(metrics.get("histograms"), dict):
        raise _fail(path, f"{where} lacks 'histograms'")


def validate_results(document: Any, path: Path | str = "<memory>") -> dict[str, Any]:
    """Check a result document's schema and fields; return it, or raise :class:`ResultsError` naming ``path``.

    Every (optimizer, lr, seed) of the config must appear exactly once among the runs: a missing run, an extra one or
    a duplicate (which would weigh one seed twice in :func:`summarize`) is an error.
    """
    if not isinstance(document, dict):
        raise _fail(path, f"expected a JSON object, got {type(document).__name__}")
    schema = document.get("schema")
    if schema != SCHEMA:
        raise _fail(path, f"schema is {schema!r}, this version of radam reads {SCHEMA!r}; re-run the experiment")
    for key, kind in [("experiment", str), ("size", str), ("provenance", dict), ("config", dict), ("runs", list)]:
        if not isinstance(document.get(key), kind):
            raise _fail(path, f"field {key!r} is missing or not a {kind.__name__}")
    for key in ("command", "git_commit", "device", "torch_version", "date", "seeds"):
        if key not in document["provenance"]:
            raise _fail(path, f"provenance lacks {key!r}")
    config = document["config"]
    task = _check_config(config, path)
    expected = {
        (spec["label"], float(lr), seed)
        for spec in config["optimizers"]
        for lr in config["lrs"]
        for seed in config["seeds"]
    }
    found = set()
    for i, run in enumerate(document["runs"]):
        if not isinstance(run, dict):
            raise _fail(path, f"runs[{i}] is not an object")
        for key, kind in _RUN_KEYS.items():
            if not isinstance(run.get(key), kind) or isinstance(run[key], bool):
                raise _fail(path, f"runs[{i}] field {key!r} is missing or has the wrong type")
        where = f"runs[{i}] ({run['optimizer']}, lr={run['lr']}, seed={run['seed']})"
        _check_metrics(run["metrics"], task, where, path, histograms=bool(config.get("histogram_steps")))
        key = (run["optimizer"], float(run["lr"]), run["seed"])
        if key in found:
            raise _fail(path, f"{where} appears twice")
        found.add(key)
    if found != expected:
        missing = sorted(expected - found)[:3]
        extra = sorted(found - expected)[:3]
        raise _fail(path, f"runs do not match the config (missing e.g. {missing}, unexpected e.g. {extra})")
    return document


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a result file (see :func:`radam.experiments.results.validate_results`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(path, "does not exist") from None
    except UnicodeDecodeError as error:
        raise _fail(path, f"is not UTF-8 text ({error})") from None
    except OSError as error:  # a directory, no permission, ...
        raise _fail(path, f"cannot be read ({error.strerror or error})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(path, f"is not valid JSON, perhaps truncated ({error})") from None
    return validate_results(document, path)


def summarize(document: dict[str, Any], metric: str | None = None) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of a final metric, per (optimizer, lr), in config order.

    ``metric`` defaults to ``final_valid_loss`` (language models) or ``final_test_accuracy`` (images). Rows hold
    ``optimizer``, ``lr``, ``mean``, ``std``, ``n`` (finite runs), ``diverged`` (runs that diverged) and ``values``.
    """
    config = document["config"]
    if metric is None:
        metric = "final_valid_loss" if config["task"] == "language-model" else "final_test_accuracy"
    rows = []
    for spec in config["optimizers"]:
        for lr in config["lrs"]:
            runs = [r for r in document["runs"] if r["optimizer"] == spec["label"] and float(r["lr"]) == float(lr)]
            runs.sort(key=lambda r: r["seed"])
            if not runs:
                continue
            values = [r["metrics"].get(metric) for r in runs]
            finite = [v for v in values if v is not None and math.isfinite(v)]
            mean = float(np.mean(finite)) if finite else None
            std = float(np.std(finite, ddof=1)) if len(finite) > 1 else (0.0 if finite else None)
            rows.append(
                {
                    "optimizer": spec["label"],
                    "lr": lr,
                    "metric": metric,
                    "mean": mean,
                    "std": std,
                    "n": len(finite),
                    "diverged": sum(r["metrics"]["diverged_at"] is not None for r in runs),
                    "values": values,
                }
            )
    return rows


def paired_difference(
    document: dict[str, Any],
    first: tuple[str, float],
    second: tuple[str, float],
    metric: str | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The mean over seeds of ``metric(first) - metric(second)`` and its ``confidence`` interval (Student's t on the
    per-seed differences; see the module docstring). ``first`` and ``second`` are (optimizer label, lr).

    Returns ``mean``, ``low``, ``high``, ``n`` (seeds where both runs are finite) and the per-seed ``differences``.
    A seed where either run diverged is left out; fewer than two usable seeds is an error.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if metric is None:
        metric = "final_valid_loss" if document["config"]["task"] == "language-model" else "final_test_accuracy"

    def by_seed(label: str, lr: float) -> dict[int, float | None]:
        runs = {r["seed"]: r["metrics"].get(metric) for r in document["runs"]
                if r["optimizer"] == label and float(r["lr"]) == float(lr)}
        if not runs:
            raise KeyError(f"{document['experiment']} has no runs of {label!r} at lr {lr:g}")
        return runs

    a, b = by_seed(*first), by_seed(*second)
    seeds = sorted(seed for seed in a.keys() & b.keys()
                   if a[seed] is not None and b[seed] is not None and math.isfinite(a[seed]) and math.isfinite(b[seed]))
    if len(seeds) < 2:
        raise ValueError(f"{first} and {second} share fewer than two seeds with finite {metric}")
    differences = np.array([a[seed] - b[seed] for seed in seeds], dtype=np.float64)
    from scipy import stats

    n = len(differences)
    mean = float(differences.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * differences.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "differences": differences.tolist()}


def cache_path(name: str, size: str = "default") -> Path:
    """Where the package keeps the cached result of experiment ``name``: ``radam/data/NAME.json`` for the default
    (CPU) size, ``radam/data/NAME-full.json`` for the GPU size (``python -m radam.experiments run NAME
    --write-cache [--full]`` writes them)."""
    suffix = "" if size == "default" else f"-{size}"
    return Path(__file__).resolve().parent.parent / "data" / f"{name}{suffix}.json"


def load_cached(name: str, size: str = "default") -> dict[str, Any]:
    """Load and validate the cached result of experiment ``name`` at ``size`` shipped in ``radam/data/``."""
    return load_results(cache_path(name, size))
