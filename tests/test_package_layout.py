"""The package's layout: one concept per file, no module too long to read, each theory name defined once."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import radam.theory

PACKAGE = Path(radam.__file__).resolve().parent
MAX_LINES = 450
# The modules this layout covers (the optimizer's own files follow the same rule under their own tests)
CHECKED = [
    "theory/*.py",
    "schedules.py",
    "bench/*.py",
    "experiments/*.py",
    "_provenance.py",
    "book.py",
    "atomic.py",
    "_cli.py",
]


@pytest.mark.parametrize("path", sorted(p for pattern in CHECKED for p in PACKAGE.glob(pattern)), ids=str)
def test_no_module_is_over_the_line_limit(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines, more than {MAX_LINES}"


def test_every_theory_name_lives_in_one_concept_module():
    """radam.theory.NAME is the object defined in one submodule (radam.theory.ema, .psi, ...), not a copy."""
    homes = {}
    for name in radam.theory.__all__:
        obj = getattr(radam.theory, name)
        module = importlib.import_module(obj.__module__)
        assert obj.__module__.startswith("radam.theory.") and getattr(module, name) is obj, name
        homes[name] = obj.__module__
    assert len(set(homes.values())) >= 5  # the concepts are split, not one file behind a facade


def test_schedules_check_beta2_with_the_theory():
    """The warmup API refuses a beta2 with the theory's message: one check of the interval, not two."""
    from radam import schedules

    with pytest.raises(ValueError, match="open interval") as from_schedules:
        schedules.untuned_linear_warmup(1.0)
    with pytest.raises(ValueError, match="open interval") as from_theory:
        radam.theory.rho_inf(1.0)
    assert str(from_schedules.value) == str(from_theory.value)
