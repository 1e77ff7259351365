"""Helpers shared by the book's notebooks: one setup call, one plotting style, glue that works outside Jupyter Book.

Every chapter starts with::

    import radam.book
    FULL_RUN = False            # True re-runs the long GPU experiments instead of loading cached results
    device = radam.book.setup()

``setup`` makes a notebook's printed output the same on every run of the same environment: it seeds Python's, numpy's
and torch's generators, pins torch to one CPU thread (thread count changes the last digits of float sums), asks
torch for deterministic algorithms and fixes the figure size and resolution.
"""

from __future__ import annotations

import ast
import importlib.resources
import inspect
import json
import os
import random
import re
import textwrap
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

__all__ = [
    "setup",
    "experiment_results",
    "provenance_line",
    "cached_results",
    "provenance_fields",
    "provenance_table",
    "glue",
    "round_significant",
    "show_source",
    "table",
    "SEED",
]

SEED = 0
FIGURE_SIZE = (6.4, 4.0)
FIGURE_DPI = 100


def setup(seed: int = SEED, threads: int = 1) -> torch.device:
    """Seed every generator, fix the CPU thread count and the plotting style; return the device to run on.

    The device is CUDA when a GPU is present, else the CPU. Default-mode cells never depend on it (their committed
    outputs are made on a CPU); it is used by the ``FULL_RUN`` experiments.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    _set_plot_style()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def experiment_results(name: str, full: bool = False) -> dict[str, Any]:
    """The results of the experiment ``name``, in one call for a chapter's ``FULL_RUN`` switch.

    With ``full`` it runs the GPU-sized experiment (:func:`radam.experiments.run_experiment` with ``size="full"``: a
    progress bar; started again after an interruption, it resumes) and returns its validated result file; without, it
    returns the cached CPU-sized result shipped with the package (:func:`radam.experiments.load_cached`).
    """
    from radam.experiments import load_cached, load_results, run_experiment

    if full:
        return load_results(run_experiment(name, "full"))
    return load_cached(name)


def provenance_line(document: dict[str, Any]) -> str:
    """Where a result file's numbers came from, in one line: device, torch version, commit and date. ``document`` is
    any result file the package ships (:func:`cached_results`): an experiment's, a benchmark's or a test record."""
    from radam import _provenance

    return _provenance.summary(_provenance.of(document))


def cached_results() -> dict[str, dict[str, Any]]:
    """Every result file the book's chapters load, by its path under ``radam/data/``: the experiments' results
    (``NAME.json``, and ``NAME-full.json`` once the GPU size has run) and the benchmark records (``bench/``). The
    records of the GPU tests (``test-records/``) are the repository's, not the book's: read them with
    :func:`provenance_table` directly."""
    data = importlib.resources.files("radam").joinpath("data")
    found = {}
    for folder in ("", "bench"):
        place = data.joinpath(folder) if folder else data
        for item in sorted(place.iterdir(), key=lambda item: item.name):
            if item.name.endswith(".json"):
                found[f"{folder}/{item.name}".lstrip("/")] = json.loads(item.read_text())
    return found


_SIZES = {"tiny": "test size", "default": "CPU size", "full": "GPU size"}


def _what(document: dict[str, Any]) -> str:
    if "experiment" in document:  # an experiment's results
        figures = document["config"]["description"].split(":")[0].replace("of the paper", "of the RAdam paper")
        return f"{len(document['runs'])} training runs, {_SIZES[document['size']]}: {figures}"
    if "cases" in document:  # a benchmark record
        if document.get("mode") == "host-only":
            return "the fused step's host work, timed on a CPU"
        return f"step times against torch on a {'GPU' if document['device']['type'] == 'cuda' else 'CPU'}"
    counts = {
        outcome: sum(run["counts"][outcome] for run in document["runs"]) for outcome in document["runs"][0]["counts"]
    }
    outcomes = ", ".join(f"{number} {outcome}" for outcome, number in counts.items() if number)
    return f"the tests that need a CUDA GPU: {outcomes}"


def provenance_fields(document: dict[str, Any]) -> dict[str, str]:
    """What a result file holds and where its numbers came from, as text: ``what``, ``command``, ``commit``,
    ``device``, ``machine`` (the device's short name), ``versions``, ``date`` and, where seeds chose the numbers,
    ``seeds``. ``document`` is any file of :func:`cached_results`."""
    from radam import _provenance

    return {"what": _what(document), **_provenance.fields(_provenance.of(document))}


def provenance_table(path: str, document: dict[str, Any]) -> _Table:
    """A result file's provenance as a two-column table headed by its ``path`` and what it holds: the command that
    made it, the commit, device, versions, date and seeds; for a test record also each pytest run's command and
    outcome counts."""
    found = provenance_fields(document)
    rows = [[key, f"`{value}`" if key == "command" else value] for key, value in found.items()]
    rows = [row for row in rows if row[0] not in ("what", "machine")]
    test_runs = document["runs"] if str(document.get("schema", "")).startswith("radam.test-record") else []
    for number, run in enumerate(test_runs, start=1):
        counts = ", ".join(f"{count} {outcome}" for outcome, count in run["counts"].items() if count)
        failed = [test["id"].split("::")[-1] for test in run["tests"] if test["outcome"] in ("failed", "error")]
        rows.append([f"run {number}", f"`{run['command']}`: {counts}"])
        if failed:
            rows.append([f"run {number} failed", ", ".join(failed)])
    return table([f"`{path}`", found["what"]], rows)


def _set_plot_style() -> None:
    try:
        import matplotlib as mpl
    except ImportError:  # plotting is optional for package users; the notebooks install matplotlib
        return
    mpl.rcParams.update(
        {
            "figure.figsize": FIGURE_SIZE,
            "figure.dpi": FIGURE_DPI,
            "savefig.dpi": FIGURE_DPI,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "font.size": 10,
        }
    )


def round_significant(value: Any, digits: int = 4) -> Any:
    """Round a float (or every float in a list/tuple) to ``digits`` significant digits; leave ints and text alone.

    A float that rounds to a whole number comes back as an ``int``, so that it prints without a trailing ``.0``.

    Printed and glued numbers go through this so that the last, platform-dependent digits of a float never reach a
    committed output.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # numpy functions return 0-d arrays for scalar input
    if isinstance(value, np.bool_):
        return bool(value)  # a numpy comparison's result, glued as True/False
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (bool, Integral, str)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(round_significant(v, digits) for v in value)
    if isinstance(value, (Real, np.floating)):
        value = float(value)
        if value == 0.0 or not np.isfinite(value):
            return value
        rounded = float(f"{value:.{digits}g}")
        # A whole number reads better without its ".0" (59000, not 59000.0), as long as it is exactly representable
        return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
    raise TypeError(f"round_significant takes numbers or lists of numbers, got {type(value).__name__}")


def glue(name: str, value: Any, digits: int = 4) -> Any:
    """Make ``value`` (rounded to ``digits`` significant digits) available to the book's prose as ``{glue:}`name```.

    Inside Jupyter Book's environment this is ``myst_nb.glue`` with ``display=False``; where myst-nb is not
    installed (Colab) nothing is recorded. Returns the rounded value so a cell can also print or assert it.

    Do not end a cell with a bare ``glue(...)`` call followed by ``;``: nbval runs cells without IPython's history,
    so the semicolon does not hide the returned value there and the cell's outputs would differ. Assign the result.
    """
    rounded = round_significant(value, digits)
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return rounded
    myst_glue(name, rounded, display=False)
    return rounded


class _Source:
    """Source code that renders as a highlighted block in Jupyter (Markdown) and as plain text elsewhere."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.text}```"

    def __repr__(self) -> str:
        return self.text


def show_source(obj: Any, docstring: bool = True) -> _Source:
    """The package's own source of a function or class, for display in a chapter (never a second copy of it).

    A cell ending in ``radam.book.show_source(radam.theory.rho_t)`` shows the code that the chapter's computations
    run, so the text cannot drift from the package. With ``docstring=False`` the docstring is left out, for a
    chapter whose prose has just stated the equation it holds.
    """
    source = inspect.getsource(obj)
    if docstring:
        return _Source(source)
    lines = source.splitlines(keepends=True)
    definition = ast.parse(textwrap.dedent(source)).body[0]  # dedent keeps the line numbers
    first = definition.body[0] if getattr(definition, "body", None) else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        del lines[first.lineno - 1 : first.end_lineno]
    return _Source("".join(lines))


class _Table:
    """A table that renders as Markdown in Jupyter (an HTML table in the book) and as aligned text elsewhere."""

    def __init__(self, header: list[str], rows: list[list[str]], numeric: list[bool]) -> None:
        self.header, self.rows, self.numeric = header, rows, numeric

    def _repr_markdown_(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        rule = "|" + "|".join("---:" if right else ":---" for right in self.numeric) + "|"
        return "\n".join([line(self.header), rule, *(line(row) for row in self.rows)]) + "\n"

    def __repr__(self) -> str:
        widths = [max(len(row[k]) for row in [self.header, *self.rows]) for k in range(len(self.header))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                cell.rjust(width) if right else cell.ljust(width)
                for cell, width, right in zip(cells, widths, self.numeric)
            ).rstrip()

        return "\n".join([line(self.header), *(line(row) for row in self.rows)])


_NUMBER_TEXT = re.compile(r"[+\-\u2212]?[\d.,]+(e[+\-]?\d+)?%?|\u2014")  # "+1.2%", "3e-5", or a dash for "none"


def _is_number(value: Any) -> bool:
    """Whether a table cell reads as a number (and so is right-aligned): a number or a formatted one."""
    if isinstance(value, str):
        return bool(_NUMBER_TEXT.fullmatch(value))
    return isinstance(value, (Real, np.number)) and not isinstance(value, bool)


def _table_cell(value: Any, digits: int) -> str:
    value = round_significant(value, digits) if not isinstance(value, str) else value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)  # 2000, but 20,000
    if not np.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else text


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 4) -> _Table:
    """A table of a chapter's results: an HTML table in the book, aligned plain text where Markdown is not shown.

    Numbers are rounded to ``digits`` significant digits (:func:`round_significant`; whole numbers from 10,000 up get
    thousands separators, ``1.2e-07`` is written ``1.2e-7``); a string is shown as it is, so a cell can carry its own
    format, e.g. ``f"{error:+.1%}"``, or ``"\u2014"`` for a value that does not exist. Columns of numbers (formatted
    or not) are right-aligned. A cell ending in ``radam.book.table(...)`` displays it.
    """
    header = [str(cell) for cell in header]
    raw_rows = [
        [value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value for value in row] for row in rows
    ]  # numpy functions return 0-d arrays for scalar input
    for row in raw_rows:
        if len(row) != len(header):
            raise ValueError(f"every row needs {len(header)} cells (one per column), got {len(row)}: {row}")
    numeric = [bool(raw_rows) and all(_is_number(row[k]) for row in raw_rows) for k in range(len(header))]
    formatted = [[_table_cell(value, digits) for value in row] for row in raw_rows]
    return _Table(header, formatted, numeric)
