r"""Results reduced over seeds: the mean and spread of a final metric, and paired comparisons with an interval.

:func:`summarize` reduces runs over seeds: for a final metric :math:`x_1, \dots, x_n` of the finite runs it reports
the mean and the sample standard deviation

.. math:: \bar x = \frac1n \sum_i x_i, \qquad s = \sqrt{\frac{1}{n-1} \sum_i (x_i - \bar x)^2}

(0 for :math:`n = 1`) and how many runs diverged. :func:`paired_difference` compares two settings seed by seed: runs
with the same seed start from the same initial weights and see the same batches, so the differences
:math:`d_i = x_i - y_i` carry less noise than the two means, and its interval is Student's t interval of their mean,

.. math:: \bar d \pm t_{n-1,\,(1+c)/2}\; \frac{s_d}{\sqrt n} .
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["summarize", "paired_difference"]


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
        runs = {
            r["seed"]: r["metrics"].get(metric)
            for r in document["runs"]
            if r["optimizer"] == label and float(r["lr"]) == float(lr)
        }
        if not runs:
            raise KeyError(f"{document['experiment']} has no runs of {label!r} at lr {lr:g}")
        return runs

    a, b = by_seed(*first), by_seed(*second)
    seeds = sorted(
        seed
        for seed in a.keys() & b.keys()
        if a[seed] is not None and b[seed] is not None and math.isfinite(a[seed]) and math.isfinite(b[seed])
    )
    if len(seeds) < 2:
        raise ValueError(f"{first} and {second} share fewer than two seeds with finite {metric}")
    differences = np.array([a[seed] - b[seed] for seed in seeds], dtype=np.float64)
    from scipy import stats

    n = len(differences)
    mean = float(differences.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * differences.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "differences": differences.tolist()}
