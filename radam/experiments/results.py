"""Result files: one JSON document per experiment, written atomically, validated when read.

A result file holds ``schema`` (``SCHEMA``), ``experiment``, ``size``, ``provenance`` (the record of
``radam._provenance``: command, git commit and whether files differed from it, date, device, library versions, seeds),
the full ``config`` and one entry per run (``optimizer``, ``lr``, ``seed``, ``metrics``). The JSON Schema
``results.schema.json`` beside this module states the fields and their types; :func:`validate_results` checks a
document against it and adds what a schema cannot state: every configured (optimizer, lr, seed) appears exactly once,
and a logged series is as long as its steps. Files of the first format (``radam.experiments/1``, whose provenance
names ``git_commit``, ``device`` as text and ``torch_version``) are still read. :func:`load_results` rejects a file
that is not JSON, is truncated, has an unknown schema version or a wrong field, with an error that names the file and
the field.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from radam.atomic import write_json_atomically

__all__ = [
    "SCHEMA",
    "READABLE_SCHEMAS",
    "ResultsError",
    "write_json_atomically",
    "load_results",
    "validate_results",
    "cache_path",
    "load_cached",
]

SCHEMA = "radam.experiments/2"
"""The format this version writes."""
READABLE_SCHEMAS = ("radam.experiments/1", SCHEMA)
"""The formats this version reads (the cached results shipped in ``radam/data/`` include files of the first)."""
_SCHEMA_FILE = Path(__file__).resolve().with_name("results.schema.json")


class ResultsError(ValueError):
    """A result file cannot be used: not JSON, truncated, an unknown schema, or a missing or wrong field."""


def _fail(path: Path | str, problem: str) -> ResultsError:
    return ResultsError(f"result file {path}: {problem}")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(_SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _location(document: dict[str, Any], path: list[Any]) -> str:
    """``runs[3] (radam, lr=0.01, seed=2), field 'metrics.train_loss[0]'`` for the path of a schema error."""
    prefix, parts = "", list(path)
    if len(parts) >= 2 and parts[0] == "runs" and isinstance(parts[1], int):
        run = document["runs"][parts[1]]
        prefix = f"runs[{parts[1]}]"
        if isinstance(run, dict):
            prefix += f" ({run.get('optimizer')}, lr={run.get('lr')}, seed={run.get('seed')})"
        parts = parts[2:]
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")
    if not field:
        return prefix or "the document"
    return f"{prefix}, field {field!r}" if prefix else f"field {field!r}"


def _schema_problem(document: dict[str, Any]) -> str | None:
    """The most relevant violation of the JSON Schema, as text naming the field, or None."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(document))
    if error is None:
        return None
    where = _location(document, list(error.absolute_path))
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return f"{where} lacks {missing[0]!r}"
    return f"{where}: {error.message}"


def validate_results(document: Any, path: Path | str = "<memory>") -> dict[str, Any]:
    """Check a result document against the JSON Schema and the config; return it, or raise :class:`ResultsError`
    naming ``path`` and the field.

    Every (optimizer, lr, seed) of the config must appear exactly once among the runs: a missing run, an extra one or
    a duplicate (which would weigh one seed twice in :func:`radam.experiments.summary.summarize`) is an error.
    """
    if not isinstance(document, dict):
        raise _fail(path, f"expected a JSON object, got {type(document).__name__}")
    schema = document.get("schema")
    if schema not in READABLE_SCHEMAS:
        raise _fail(
            path, f"schema is {schema!r}, this version of radam reads {READABLE_SCHEMAS}; re-run the experiment"
        )
    problem = _schema_problem(document)
    if problem is not None:
        raise _fail(path, problem)
    config = document["config"]
    expected = {
        (spec["label"], float(lr), seed)
        for spec in config["optimizers"]
        for lr in config["lrs"]
        for seed in config["seeds"]
    }
    found = set()
    for i, run in enumerate(document["runs"]):
        where = _location(document, ["runs", i])
        metrics = run["metrics"]
        if len(metrics["log_steps"]) != len(metrics["train_loss"]):
            raise _fail(path, f"{where}: log_steps and train_loss differ in length")
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
    """Read and validate a result file (see :func:`~radam.experiments.results.validate_results`)."""
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


def cache_path(name: str, size: str = "default") -> Path:
    """Where the package keeps the cached result of experiment ``name``: ``radam/data/NAME.json`` for the default
    (CPU) size, ``radam/data/NAME-full.json`` for the GPU size (``python -m radam.experiments run NAME
    --write-cache [--full]`` writes them)."""
    suffix = "" if size == "default" else f"-{size}"
    return Path(__file__).resolve().parent.parent / "data" / f"{name}{suffix}.json"


def load_cached(name: str, size: str = "default") -> dict[str, Any]:
    """Load and validate the cached result of experiment ``name`` at ``size`` shipped in ``radam/data/``."""
    return load_results(cache_path(name, size))
