"""Running a whole experiment: every (optimizer, lr, seed), resumable, ending in one validated result file.

Layout beside the result file ``OUT.json``: a folder ``OUT.json.checkpoints/`` holding ``config.json`` (the
configuration the folder belongs to), ``RUN.pt`` (the latest checkpoint of an unfinished run) and ``RUN.json`` (the
metrics of a finished run). A second invocation with the same configuration skips finished runs and resumes the
unfinished one from its checkpoint, so a run killed at any point ends with the same metrics as one never
interrupted. Each run's record keeps its wall time (``seconds``, of the session that finished it) and the git commit
of the code that computed it; the provenance's commit is that of the session that started last, its date that of
the end. Once every run is done the result file is written atomically and the folder is removed.

On a CPU a resumed run is bit-identical to an uninterrupted one (the tests check it). On a GPU the runner enables
TF32 matrix products and does not force deterministic kernels, so two runs, resumed or not, may differ in the last
bits; the result file's ``device`` says which case applies.
"""

from __future__ import annotations

import datetime as _datetime
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from radam.experiments.configs import ExperimentConfig, get_config
from radam.experiments.optimizers import frozen_steps
from radam.experiments.results import (
    SCHEMA,
    ResultsError,
    load_results,
    provenance,
    validate_results,
    write_json_atomically,
)
from radam.experiments.tasks import make_task
from radam.experiments.training import StepCallback, train_run

__all__ = ["run_experiment", "run_id", "default_output", "resolve_device"]


def run_id(label: str, lr: float, seed: int) -> str:
    """A file-name-safe identifier of one run."""
    return f"{label}__lr{lr:g}__seed{seed}"


def default_output(name: str, size: str) -> Path:
    """``results/NAME-SIZE.json`` in the working directory."""
    return Path("results") / f"{name}-{size}.json"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` means CUDA when available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check_folder(folder: Path, config: dict[str, Any]) -> None:
    marker = folder / "config.json"
    if marker.exists():
        try:
            saved = json.loads(marker.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RuntimeError(f"{marker} is corrupt ({error}); delete {folder} to start over") from None
        if saved != config:
            raise RuntimeError(
                f"the checkpoint folder {folder} belongs to a different configuration of this experiment; delete it "
                "or choose another --output"
            )
    else:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomically(config, marker)


def run_experiment(
    name: str | ExperimentConfig,
    size: str = "default",
    output: str | Path | None = None,
    device: str | torch.device | None = None,
    data_source: str | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
    force: bool = False,
    progress: bool = True,
    step_callback: StepCallback | None = None,
    argv: Sequence[str] | None = None,
) -> Path:
    """Run experiment ``name`` at ``size`` and return the path of its (validated) result file.

    ``name`` may also be an :class:`~radam.experiments.configs.ExperimentConfig` (e.g. a modified one). ``data_source`` swaps the dataset
    (``"shakespeare"`` for the language-model experiments, ``"cifar10"`` for ``lr-robustness``; both read from
    ``data_root`` and are downloaded only with ``download=True``). An existing complete result file for the same
    configuration is returned as is unless ``force``.
    """
    config = get_config(name, size) if isinstance(name, str) else name
    if data_source is not None:
        config = config.replace(data={**config.data, "source": data_source})
    output = Path(output) if output is not None else default_output(config.name, config.size)
    config_dict = config.to_dict()
    if output.exists() and not force:
        try:
            existing = load_results(output)
        except ResultsError:
            existing = None
        if existing is not None and existing["config"] == config_dict:
            return output
    folder = output.with_name(output.name + ".checkpoints")
    _check_folder(folder, config_dict)

    torch_device = resolve_device(device)
    if torch_device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # The code version is taken now, before any run: the commit that computes the runs, not whatever is checked out
    # when they end. Each run's record also keeps it (a resumed experiment may span several sessions).
    prov = provenance(torch_device, list(config.seeds), list(argv) if argv is not None else None)
    task = make_task(config, torch_device, data_root=data_root, download=download)
    keys = config.run_keys()
    total = sum(config.steps + frozen_steps(config.optimizer(label)) for label, _, _ in keys)
    bar = tqdm(total=total, desc=config.name, unit="step", disable=not progress, dynamic_ncols=True)
    runs = []
    try:
        for label, lr, seed in keys:
            rid = run_id(label, lr, seed)
            done = folder / f"{rid}.json"
            steps = config.steps + frozen_steps(config.optimizer(label))
            if done.exists():
                record = json.loads(done.read_text(encoding="utf-8"))
                bar.update(steps)
            else:
                bar.set_postfix_str(rid)
                started = time.perf_counter()
                metrics = train_run(
                    config, label, lr, seed, task, torch_device, checkpoint=folder / f"{rid}.pt",
                    step_callback=step_callback, progress=bar.update, run_id=rid,
                )
                record = {"optimizer": label, "lr": lr, "seed": seed, "metrics": metrics,
                          "seconds": round(time.perf_counter() - started, 3), "git_commit": prov["git_commit"]}
                write_json_atomically(record, done)
                (folder / f"{rid}.pt").unlink(missing_ok=True)
            runs.append(record)
    finally:
        bar.close()

    document = {
        "schema": SCHEMA,
        "experiment": config.name,
        "size": config.size,
        "provenance": {**prov, "date": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds")},
        "config": config_dict,
        "runs": runs,
    }
    validate_results(document, output)
    write_json_atomically(document, output)
    shutil.rmtree(folder)
    return output
