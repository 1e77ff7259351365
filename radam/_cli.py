"""Argument types shared by the command lines (``python -m radam.experiments``, ``python -m radam.bench``), so that a
bad count is a usage error naming the option, not a traceback after minutes of work."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer of at least 1 (a count of repeats, threads, processes, ...)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (a count that may be zero, such as warm-up repeats)."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, smallest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < smallest:
        raise argparse.ArgumentTypeError(f"{value} is less than {smallest}")
    return value
