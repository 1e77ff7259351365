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

import inspect
import os
import random
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

__all__ = ["setup", "glue", "round_significant", "show_source", "SEED"]

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


def show_source(obj: Any) -> _Source:
    """The package's own source of a function or class, for display in a chapter (never a second copy of it).

    A cell ending in ``radam.book.show_source(radam.theory.rho_t)`` shows the code that the chapter's computations
    run, so the text cannot drift from the package.
    """
    return _Source(inspect.getsource(obj))
