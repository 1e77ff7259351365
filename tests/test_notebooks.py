"""The conventions every chapter follows, checked on the committed notebooks (nbval then re-runs them)."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import book_tools  # noqa: E402
from tools.book_tools import INSTALL_CELL_MARKER, install_cell_source, installed_url, repository_url  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_kernelspec_is_python3(notebook):
    path, nb = notebook
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec must be python3"


def test_first_code_cell_is_the_guarded_colab_install(notebook):
    path, nb = notebook
    first = code_cells(nb)[0]
    assert first.source.startswith(INSTALL_CELL_MARKER), f"{path.name}: first code cell is not the install cell"
    assert 'if "google.colab" in sys.modules:' in first.source
    assert "torch" not in first.source.split("\n", 1)[1], f"{path.name}: the install cell must not touch torch"
    assert installed_url(first.source) == repository_url(), (
        f"{path.name}: the install cell installs from {installed_url(first.source)}, but _config.yml says "
        f"{repository_url()}; run `make repository-url`"
    )
    assert first.source == install_cell_source(repository_url())
    assert first.outputs == [], f"{path.name}: the install cell must print nothing outside Colab"


def test_setup_cell_comes_second(notebook):
    path, nb = notebook
    setup = code_cells(nb)[1].source
    assert re.search(r"^(device = )?radam\.book\.setup\(", setup, re.M), f"{path.name}: setup() is not called"
    later = "\n".join(c.source for c in code_cells(nb)[2:])
    if re.search(r"\bFULL_RUN\b", later):  # a chapter without long runs needs no switch
        assert "FULL_RUN = False" in setup, f"{path.name}: the second code cell must define FULL_RUN = False"
    if re.search(r"\bdevice\b", later):
        assert re.search(r"^device = radam\.book\.setup\(", setup, re.M), f"{path.name}: device is not defined"


def test_every_cell_ran_once_in_order_without_errors(notebook):
    path, nb = notebook
    counts = [c.execution_count for c in code_cells(nb)]
    assert None not in counts, f"{path.name}: unexecuted code cells; run `make notebooks`"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: cells were not run top to bottom in one kernel"
    for cell in code_cells(nb):
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name}: a committed output is an error"
            if out.output_type == "stream":
                assert out.name == "stdout", f"{path.name}: stderr in committed output: {out.text[:200]}"
                assert out.text.strip(), f"{path.name}: an empty stream output"
            if out.output_type in ("display_data", "execute_result"):
                assert out.data, f"{path.name}: an empty display output"


def test_outputs_hold_no_memory_addresses_or_long_floats(notebook):
    path, nb = notebook
    for cell in code_cells(nb):
        for out in cell.outputs:
            text = out.get("text", "") + "".join(
                v for k, v in out.get("data", {}).items() if isinstance(v, str) and not k.startswith("image/")
            )
            assert not re.search(r"at 0x[0-9a-f]{6,}", text), f"{path.name}: a memory address in an output"
            if "getsource" not in cell.source and "show_source" not in cell.source:
                assert not re.search(r"\d\.\d{11,}", text), (
                    f"{path.name}: an unrounded float in an output: {text[:200]}"
                )


def test_no_colab_or_widget_metadata(notebook):
    path, nb = notebook
    assert "colab" not in nb.metadata and "widgets" not in nb.metadata and "accelerator" not in nb.metadata


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(notebooks/\S+)", toc))
    assert {f"notebooks/{p.stem}" for p in NOTEBOOKS} == listed


def test_colab_button_and_repository_are_configured():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["branch"] == "colab"  # the Colab editions (tools/colab_edition.py)
    assert config["repository"]["path_to_book"] == ""
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["execute"]["execute_notebooks"] == "off"
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository_url())


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_the_colab_badge_opens_the_chapters_colab_edition(notebook):
    """The badge under each chapter's title opens its Colab edition (plain Markdown, numbers filled in) on the
    branch the site's Colab button opens, not the MyST notebook on main, which Colab cannot render."""
    target = book_tools.colab_badge_target(repository_url(), book_tools.colab_branch(), notebook.name)
    title = nbformat.read(notebook, as_version=4).cells[0]
    assert f"(https://colab.research.google.com/assets/colab-badge.svg)]({target})" in title.source, (
        f"{notebook.name}: run `make repository-url`"
    )


NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg")]


def _nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *NBVAL, str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=300,
    )


def test_nbval_really_compares_printed_numbers(tmp_path):
    """The notebook test is not a smoke test: a committed number that differs from a fresh run fails it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("print(round(2 / 3, 4))", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.6667\n")]
    nb.cells = [cell]
    good = tmp_path / "good.ipynb"
    nbformat.write(nb, good)
    assert _nbval(good).returncode == 0

    cell.outputs[0].text = "0.6668\n"
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nb, bad)
    result = _nbval(bad)
    assert result.returncode != 0, result.stdout
    assert "0.6668" in result.stdout
