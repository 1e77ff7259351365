"""Running a whole experiment: every (optimizer, lr, seed), resumable, ending in one validated result file.

Layout beside the result file ``OUT.json``: a folder ``OUT.json.checkpoints/`` holding ``config.json`` (the
configuration the folder belongs to and the hardware its runs are computed on; resuming elsewhere is refused),
``RUN.pt`` (the latest checkpoint of an unfinished run) and ``RUN.json`` (the metrics of a finished run). A second
invocation with the same configuration skips finished runs and resumes the unfinished one from its checkpoint, so a
run killed at any point ends with the same metrics as one never interrupted. With ``jobs > 1`` the runs are shared
out to that many worker processes on the same device (small models leave a GPU mostly idle, waiting for Python;
several processes fill it); every run seeds itself, so its numbers do not depend on which process ran it or in what
order. ``part`` runs only the runs of one named part (:meth:`~radam.experiments.specs.ExperimentConfig.parts`, one
per learning rate) into the same folder: the parts of a long experiment can run in separate sessions, in any order,
and the last one to finish writes the result file. Each run's record keeps its wall time (``seconds``, of the session
that finished it) and the git commit of the code that computed it; the provenance's commit is that of the session
that started last, its date that of the end. Once every run is done the result file is written atomically and the
folder is removed.

On a CPU a resumed run is bit-identical to an uninterrupted one (the tests check it). On a GPU the runner enables
TF32 matrix products and does not force deterministic kernels, so two runs, resumed or not, may differ in the last
bits; the result file's ``device`` says which case applies.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from radam import _provenance as provenance
from radam.experiments.configs import get_config
from radam.experiments.optimizers import frozen_steps
from radam.experiments.results import SCHEMA, ResultsError, load_results, validate_results, write_json_atomically
from radam.experiments.specs import ExperimentConfig
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


def _check_folder(folder: Path, config: dict[str, Any], hardware: str) -> None:
    """Claim ``folder`` for this configuration on this hardware, or check that it holds runs of exactly that: one
    result file must not mix runs from different configurations, or from different hardware under one device name."""
    marker = folder / "config.json"
    if marker.exists():
        try:
            saved = json.loads(marker.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RuntimeError(f"{marker} is corrupt ({error}); delete {folder} to start over") from None
        if saved == config:  # the marker of a radam that did not record the hardware yet: adopt this hardware
            write_json_atomically({"config": config, "hardware": hardware}, marker)
            return
        if not isinstance(saved, dict) or saved.get("config") != config:
            raise RuntimeError(
                f"the checkpoint folder {folder} belongs to a different configuration of this experiment; delete it "
                "or choose another --output"
            )
        if saved.get("hardware") != hardware:
            raise RuntimeError(
                f"the checkpoint folder {folder} holds runs computed on {saved.get('hardware')!r}, not on "
                f"{hardware!r}: finish the experiment there, or delete the folder (or choose another --output) to "
                "start over here"
            )
    else:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomically({"config": config, "hardware": hardware}, marker)


def _prepare_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def _run_and_record(
    config: ExperimentConfig,
    key: tuple[str, float, int],
    task: Any,
    device: torch.device,
    folder: Path,
    code: dict[str, Any],
    step_callback: StepCallback | None = None,
    progress: Any = None,
) -> None:
    """Train one run (resuming its checkpoint if there is one) and write its record ``RUN.json`` atomically."""
    label, lr, seed = key
    rid = run_id(label, lr, seed)
    started = time.perf_counter()
    metrics = train_run(
        config,
        label,
        lr,
        seed,
        task,
        device,
        checkpoint=folder / f"{rid}.pt",
        step_callback=step_callback,
        progress=progress,
        run_id=rid,
    )
    record = {
        "optimizer": label,
        "lr": lr,
        "seed": seed,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 3),
        **code,
    }
    write_json_atomically(record, folder / f"{rid}.json")
    (folder / f"{rid}.pt").unlink(missing_ok=True)


def _finished_line(folder: Path, key: tuple[str, float, int]) -> str:
    """``RUN: S s, last LOSS-or-ACCURACY`` from a finished run's record."""
    rid = run_id(*key)
    record = json.loads((folder / f"{rid}.json").read_text(encoding="utf-8"))
    metrics = record["metrics"]
    last = ""
    for name in ("valid_loss", "test_accuracy", "train_loss"):
        values = metrics.get(name)
        if values:
            value = values[-1]
            last = f", last {name} " + (f"{value:.4g}" if value is not None else "not finite (diverged)")
            break
    return f"{rid}: {record['seconds']:.1f} s{last}"


_WORKER: dict[str, Any] = {}  # in a worker process: the experiment's config, task and device


def _exit_with(parent: int) -> None:
    """End this worker as soon as its parent is gone (killed, say), so that no orphan keeps training a run that a
    resumed experiment will train again, and writing to its checkpoint."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _start_worker(config: ExperimentConfig, device: str, data_root: Path | None, download: bool, threads: int) -> None:
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()
    torch_device = torch.device(device)
    if torch_device.type == "cpu":
        torch.set_num_threads(threads)
    _prepare_device(torch_device)
    task = make_task(config, torch_device, data_root=data_root, download=download)
    _WORKER.update(config=config, task=task, device=torch_device)


def _run_in_worker(key: tuple[str, float, int], folder: Path, code: dict[str, Any]) -> tuple[str, float, int]:
    _run_and_record(_WORKER["config"], key, _WORKER["task"], _WORKER["device"], folder, code)
    return key


def _worker_threads(jobs: int) -> int:
    """torch threads of each of ``jobs`` CPU workers: the cores shared out evenly."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_in_workers(
    config: ExperimentConfig,
    pending: list[tuple[str, float, int]],
    jobs: int,
    device: torch.device,
    folder: Path,
    code: dict[str, Any],
    data_root: Path | None,
    download: bool,
    bar: Any,
    finished: Callable[[tuple[str, float, int]], None],
) -> None:
    """Run ``pending`` in ``jobs`` fresh processes ("spawn": CUDA cannot be forked). After a failure no further run
    starts; the runs already under way finish (and are kept for a resume), then the failure is raised."""
    threads = _worker_threads(jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs,
        mp_context=context,
        initializer=_start_worker,
        initargs=(config, str(device), data_root, download, threads),
    ) as pool:
        futures = {pool.submit(_run_in_worker, key, folder, code): key for key in pending}
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)  # report each run as it ends
            for future in done:
                error = future.exception()
                if error is not None:
                    pool.shutdown(cancel_futures=True)
                    label, lr, seed = futures[future]
                    failed = run_id(label, lr, seed)
                    if isinstance(error, BrokenProcessPool):
                        raise RuntimeError(
                            f"a worker process died while running {failed}: out of memory, killed, or started from "
                            "a script without `if __name__ == '__main__':` around its code (worker processes are "
                            "started with 'spawn', which imports the calling script again); finished runs are kept"
                        ) from error
                    raise RuntimeError(f"run {failed} failed in a worker process: {error!r}") from error
                label, lr, seed = future.result()
                bar.update(config.steps + frozen_steps(config.optimizer(label)))
                finished((label, lr, seed))


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
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
    part: str | None = None,
) -> Path | None:
    """Run experiment ``name`` at ``size`` and return the path of its (validated) result file.

    ``name`` may also be an :class:`~radam.experiments.specs.ExperimentConfig` (e.g. a modified one).
    ``data_source`` swaps the dataset (``"shakespeare"`` for the language-model experiments, ``"cifar10"`` for
    ``lr-robustness``; both read from ``data_root`` and are downloaded only with ``download=True``). An existing
    complete result file for the same configuration is returned as is unless ``force``. ``jobs`` worker processes
    share the runs out (``jobs=1``: all in this process, the only mode that calls ``step_callback``); they are
    started with "spawn", so a script that calls this with ``jobs > 1`` needs ``if __name__ == "__main__":``.
    ``log`` receives one line per finished run (its time and final loss or accuracy): the pace of a run without a
    progress bar, in a log that a time limit may cut. ``part`` (a name from ``config.parts()``) runs that part's
    runs only; the result file is written once every part is done, and until then the call returns ``None``.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if jobs > 1 and step_callback is not None:
        raise ValueError("step_callback is called only when the runs share this process (jobs=1)")
    config = get_config(name, size) if isinstance(name, str) else name
    parts = config.parts()
    if part is not None and part not in parts:
        raise ValueError(f"experiment {config.name!r} has no part {part!r}; its parts are {list(parts)}")
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
    torch_device = resolve_device(device)
    _check_folder(folder, config_dict, provenance.hardware_name(torch_device))
    _prepare_device(torch_device)
    # The code version is taken now, before any run: the commit that computes the runs, not whatever is checked out
    # when they end. Each run's record also keeps it (a resumed experiment may span several sessions).
    keys = config.run_keys()
    done = {key for key in keys if (folder / f"{run_id(*key)}.json").exists()}
    wanted = set(parts[part]) if part is not None else set(keys)
    pending = [key for key in keys if key not in done and key in wanted]
    processes = min(jobs, len(pending)) if len(pending) > 1 else 1
    threads = _worker_threads(processes) if processes > 1 else None
    argv = sys.argv if argv is None else list(argv)
    command = "python -m radam.experiments " + shlex.join(argv[1:]) if argv else ""
    prov = provenance.record(command, torch_device, config.seeds, threads, processes)
    code = {"commit": prov["commit"], "dirty": prov["dirty"]}
    scope = [key for key in keys if key in wanted]
    total = sum(config.steps + frozen_steps(config.optimizer(label)) for label, _, _ in scope)
    bar = tqdm(
        total=total,
        desc=config.name + (f" {part}" if part else ""),
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    bar.update(sum(config.steps + frozen_steps(config.optimizer(key[0])) for key in scope if key in done))
    root = Path(data_root) if data_root is not None else None
    count = iter(range(len(scope) - len(pending) + 1, len(scope) + 1))

    def finished(key: tuple[str, float, int]) -> None:
        if log is not None:
            log(f"{next(count)}/{len(scope)} {_finished_line(folder, key)}")

    try:
        if processes > 1:
            _run_in_workers(config, pending, processes, torch_device, folder, code, root, download, bar, finished)
        elif pending:
            task = make_task(config, torch_device, data_root=root, download=download)
            for key in pending:
                bar.set_postfix_str(run_id(*key))
                _run_and_record(config, key, task, torch_device, folder, code, step_callback, bar.update)
                finished(key)
    finally:
        bar.close()
    if any(not (folder / f"{run_id(*key)}.json").exists() for key in keys):
        return None  # other parts are still to run
    runs = [json.loads((folder / f"{run_id(*key)}.json").read_text(encoding="utf-8")) for key in keys]

    document = {
        "schema": SCHEMA,
        "experiment": config.name,
        "size": config.size,
        "provenance": {**prov, "date": provenance.now()},
        "config": config_dict,
        "runs": runs,
    }
    validate_results(document, output)
    write_json_atomically(document, output)
    shutil.rmtree(folder)
    return output
