"""Where a result came from, in one format for every file the package writes (benchmarks and experiments).

:func:`record` returns::

    {"command": "python -m radam.bench --device cuda",      # how to make the file again
     "commit": "0123...ef" or None,                          # the git commit of the code (None outside a checkout)
     "dirty": False,                                         # whether tracked files differed from that commit
     "date": "2026-12-03T12:32:31+00:00",                    # UTC, when the record was taken
     "device": {"type": "cpu", "name": "AMD EPYC 7763", ...},  # what computed (see device_info)
     "versions": {"python": ..., "torch": ..., "numpy": ..., "triton": ..., "radam": ..., "cuda": ...},
     "seeds": [0, 1, 2]}                                     # where seeds choose the numbers

A benchmark file carries these keys at its top level, an experiment's result file under ``"provenance"``.
:func:`summary` reads one back as a line of text; it also reads the older experiment format
(``git_commit``, ``device`` as text, ``torch_version``), in which the cached results of the first version were made.
"""

from __future__ import annotations

import datetime as _datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["record", "git_commit", "device_info", "hardware_name", "versions", "of", "fields", "summary"]

_PACKAGE = Path(__file__).resolve().parent


def git_commit() -> tuple[str | None, bool]:
    """The commit of the checkout the package runs from and whether tracked files differ from it: ``(None, False)``
    outside a git checkout (an installed package)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(_PACKAGE), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(_PACKAGE), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, False
    return commit, bool(changes)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown processor"


def hardware_name(device: torch.device) -> str:
    """The hardware that computes, as text: ``"cuda: "`` and the GPU model, or ``"cpu: "`` and the processor."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {_cpu_name()}"


def device_info(device: torch.device, threads: int | None = None, processes: int = 1) -> dict[str, Any]:
    """The device as a record: ``type`` and ``name`` always; for a GPU its capability, memory and multiprocessors; for
    a CPU the logical CPUs and the torch threads (``threads``, default this process's); ``processes`` when several
    worker processes shared the device."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info: dict[str, Any] = {
            "type": "cuda",
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
        }
    else:
        info = {
            "type": device.type,
            "name": _cpu_name(),
            "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads() if threads is None else threads,
        }
    if processes > 1:
        info["processes"] = processes
    return info


def versions() -> dict[str, str | None]:
    """The versions of Python, torch, numpy, Triton (None where not installed), this package and CUDA."""
    import numpy

    import radam

    try:
        import triton

        triton_version: str | None = triton.__version__
    except Exception:  # not installed, or broken on this machine
        triton_version = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "numpy": numpy.__version__,
        "radam": radam.__version__,
        "cuda": torch.version.cuda,
    }


def now() -> str:
    """The current UTC time, to the second, in ISO 8601."""
    return _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds")


def record(
    command: str,
    device: torch.device,
    seeds: Sequence[int] | None = None,
    threads: int | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """The provenance of a result computed now on ``device`` by ``command`` (see the module docstring); ``seeds`` is
    left out when None."""
    commit, dirty = git_commit()
    result: dict[str, Any] = {
        "command": command,
        "commit": commit,
        "dirty": dirty,
        "date": now(),
        "device": device_info(device, threads, processes),
        "versions": versions(),
    }
    if seeds is not None:
        result["seeds"] = [int(seed) for seed in seeds]
    return result


def of(document: dict[str, Any]) -> dict[str, Any]:
    """The provenance of any result file the package writes: an experiment's or a test record's ``"provenance"``,
    or a benchmark's top level."""
    return document["provenance"] if "provenance" in document else document


def _device_text(device: dict[str, Any]) -> str:
    text = f"{device['type']}: {device['name']}"
    processes = device.get("processes", 1)
    if device["type"] == "cuda" or "torch_threads" not in device:
        return text + (f", {processes} processes" if processes > 1 else "")
    workers = f" in each of {processes} processes" if processes > 1 else ""
    cores = f", {device['logical_cpus']} cores visible" if "logical_cpus" in device else ""
    threads = device["torch_threads"]
    return f"{text}, {threads} thread{'s' if threads != 1 else ''}{workers}{cores}"


_VERSION_NAMES = {
    "python": "Python",
    "torch": "torch",
    "numpy": "numpy",
    "triton": "Triton",
    "cuda": "CUDA",
    "radam": "radam",
}
_UNCOMMITTED = "+uncommitted-changes"  # how the first experiments' format marks a dirty checkout


def fields(provenance: dict[str, Any]) -> dict[str, str]:
    """The provenance as text, field by field: ``command``, ``commit`` (``+dirty`` where tracked files differed from
    it), ``device``, ``machine`` (the device's short name), ``versions``, ``date`` and, where seeds chose the numbers,
    ``seeds``. It reads this module's format, the benchmarks' first one (without ``dirty``) and the experiments' first
    one (``git_commit``, ``device`` as text, ``torch_version``...)."""
    if "git_commit" in provenance:  # the first experiments' format
        commit, device = provenance["git_commit"], provenance["device"]
        dirty = commit.endswith(_UNCOMMITTED)
        commit = commit.removesuffix(_UNCOMMITTED)
        device = device.replace(" 1 threads ", " 1 thread ")  # the first format wrote "1 threads"
        kind, _, name = device.split(",")[0].partition(": ")
        machine = f"{name} {kind.upper()}" if name else kind  # "x86_64 CPU": that format kept no model name
        found = {key: provenance.get(f"{key}_version") for key in ("python", "torch", "numpy")}
        found["radam"] = provenance.get("package_version")
    else:
        commit, dirty = provenance["commit"] or "unknown", bool(provenance.get("dirty", False))
        device, machine = _device_text(provenance["device"]), provenance["device"]["name"]
        found = provenance["versions"]
    versions = ", ".join(f"{label} {found[key]}" for key, label in _VERSION_NAMES.items() if found.get(key))
    text = {
        "command": provenance["command"],
        "commit": commit[:12] + ("+dirty" if dirty else ""),
        "device": device,
        "machine": machine,
        "versions": versions,
        "date": provenance["date"].replace("T", " ").replace("+00:00", " UTC"),
    }
    if provenance.get("seeds") is not None:
        text["seeds"] = ", ".join(str(seed) for seed in provenance["seeds"])
    return text


def summary(provenance: dict[str, Any]) -> str:
    """One line: the device, torch's version, the commit's first 12 digits (``+dirty`` where files differed) and the
    date; for every format :func:`fields` reads."""
    text = fields(provenance)
    torch_version = provenance["torch_version"] if "git_commit" in provenance else provenance["versions"]["torch"]
    return f"device: {text['device']}; torch {torch_version}; commit {text['commit']}; {provenance['date']}"
