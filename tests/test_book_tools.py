"""The repository's notebook tooling (tools/book_tools.py), and the package's independence from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import book_tools  # noqa: E402


def test_sync_repository_url_names_a_notebook_without_the_install_cell(tmp_path):
    path = tmp_path / "only_markdown.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# A chapter")]
    nbformat.write(notebook, path)
    with pytest.raises(ValueError, match="only_markdown.ipynb: the first code cell is not the Colab install cell"):
        book_tools.sync_repository_url([path])


OLD_BADGE = (
    "# A chapter\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/someone/old/blob/main/notebooks/chapter.ipynb)"
)


def test_sync_repository_url_names_a_notebook_without_the_colab_badge(tmp_path):
    path = tmp_path / "chapter.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell(book_tools.install_cell_source("https://github.com/someone/old")),
    ]
    nbformat.write(notebook, path)
    with pytest.raises(ValueError, match="chapter.ipynb: the first cell has no Colab badge"):
        book_tools.sync_repository_url([path])


def test_sync_repository_url_rewrites_the_install_cell_and_the_badge(tmp_path):
    path = tmp_path / "chapter.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(OLD_BADGE),
        nbformat.v4.new_code_cell(book_tools.install_cell_source("https://github.com/someone/old")),
    ]
    nbformat.write(notebook, path)
    assert book_tools.sync_repository_url([path]) == [path]
    title, install = nbformat.read(path, as_version=4).cells
    assert book_tools.installed_url(install.source) == book_tools.repository_url()
    target = book_tools.colab_badge_target(book_tools.repository_url(), book_tools.colab_branch(), "chapter.ipynb")
    assert (
        title.source
        == f"# A chapter\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({target})"
    )
    assert "/blob/colab/notebooks/chapter.ipynb" in target
    assert book_tools.sync_repository_url([path]) == []  # already in step: the file is left alone


def test_the_package_needs_none_of_the_notebook_tooling():
    """Importing every part of radam loads neither nbformat, nbclient nor yaml (not the package's dependencies)."""
    code = (
        "import sys, radam, radam.book, radam.bench, radam.experiments, radam.theory, radam.schedules\n"
        "import radam.experiments.__main__\n"
        "print(sorted(m for m in ('nbformat', 'nbclient', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    assert not (ROOT / "radam" / "book_tools.py").exists()
