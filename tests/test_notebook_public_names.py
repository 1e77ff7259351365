"""Chapters 5 and 7 and the appendix on reproducing results reach the package through public names only, so that a
rename inside the package cannot break them silently: no ``radam.<module>._private`` attribute, no private module,
no ``optimizer._...`` attribute."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
PRIVATE = re.compile(r"\bradam(?:\.\w+)*\._\w+|\b(?:optimizer|opt)\._\w+|from radam(?:\.\w+)* import _\w+")


@pytest.mark.parametrize("name", ["05_radam_in_code.ipynb", "07_performance.ipynb", "reproducing_results.ipynb"])
def test_code_cells_use_public_names_only(name):
    cells = json.loads((NOTEBOOKS / name).read_text())["cells"]
    found = [
        match.group()
        for cell in cells
        if cell["cell_type"] == "code"
        for match in PRIVATE.finditer("".join(cell["source"]))
    ]
    assert found == []


def test_the_pattern_catches_what_the_chapters_once_used():
    for code in (
        "radam.functional._single_tensor_radam",
        "optimizer._fused_steps[0].plan",
        "radam._fused_kernel",
        "from radam.functional import _host_scalars",
    ):
        assert PRIVATE.search(code), code
    assert not PRIVATE.search("radam.single_tensor.single_tensor_radam(radam.fused.cached_plan(optimizer))")
