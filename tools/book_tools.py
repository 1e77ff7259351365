"""Maintenance of the book's notebooks: the Colab install cell every chapter starts with, and re-execution.

``python -m tools.book_tools execute notebooks/*.ipynb``
    re-runs each notebook in place in the current environment (what ``make notebooks`` does; committed outputs are
    made this way and no other).
``python -m tools.book_tools sync-repository-url``
    rewrites every notebook's install cell to install from ``repository.url`` in ``_config.yml``, and its "Open in
    Colab" badge to open the chapter's Colab edition on the branch ``repository.branch`` (for a fork).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

__all__ = [
    "repository_url",
    "colab_branch",
    "install_cell_source",
    "colab_badge_target",
    "INSTALL_CELL_MARKER",
    "execute_notebook",
    "main",
]

ROOT = Path(__file__).resolve().parent.parent
INSTALL_CELL_MARKER = "# Colab only: install the radam package"
KERNEL_NAME = "python3"


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """The repository URL from the book's ``_config.yml``: the one place it is written."""
    with open(config, encoding="utf-8") as f:
        return yaml.safe_load(f)["repository"]["url"]


def colab_branch(config: Path = ROOT / "_config.yml") -> str:
    """The branch the Colab buttons open (``repository.branch``): the one the Colab editions are published to."""
    with open(config, encoding="utf-8") as f:
        return yaml.safe_load(f)["repository"]["branch"]


_COLAB_BADGE_TARGET = re.compile(
    r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w./-]+?/notebooks/[\w.-]+\.ipynb"
)


def colab_badge_target(url: str, branch: str, notebook: str) -> str:
    """Where a chapter's "Open in Colab" badge leads: its Colab edition on ``branch`` of the repository ``url``."""
    return f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{branch}/notebooks/{notebook}"


def install_cell_source(url: str) -> str:
    """The first code cell of every notebook: installs the package in Colab, never touches torch, silent elsewhere."""
    return (
        f"{INSTALL_CELL_MARKER} (Colab's own torch is kept). Elsewhere this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install --quiet "radam @ git+{url}@main"'
    )


def installed_url(source: str) -> str | None:
    """The repository URL an install cell's source installs from, or None if it is not an install cell."""
    match = re.search(r'"radam @ git\+(\S+?)@main"', source)
    return match.group(1) if match else None


def sync_repository_url(paths: list[Path]) -> list[Path]:
    """Rewrite the install cell and the Colab badge of each notebook from ``_config.yml``; return the notebooks
    changed."""
    source = install_cell_source(repository_url())
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        cell = next((c for c in nb.cells if c.cell_type == "code"), None)
        if cell is None or not cell.source.startswith(INSTALL_CELL_MARKER):
            raise ValueError(f"{path}: the first code cell is not the Colab install cell")
        title = nb.cells[0]
        if title.cell_type != "markdown" or not _COLAB_BADGE_TARGET.search(title.source):
            raise ValueError(f"{path}: the first cell has no Colab badge")
        badge = _COLAB_BADGE_TARGET.sub(colab_badge_target(repository_url(), colab_branch(), path.name), title.source)
        if cell.source != source or title.source != badge:
            cell.source, title.source = source, badge
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def execute_notebook(path: Path, timeout: int = 600) -> None:
    """Execute a notebook in place, from its own folder, with the ``python3`` kernel of this environment."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(path.parent)}},
        coalesce_streams=True,  # one stdout output per cell, however the kernel chunked what was printed
    )
    client.execute()
    for cell in nb.cells:  # no timestamps or widget state in committed notebooks
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.book_tools", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="re-execute notebooks in place")
    run.add_argument("notebooks", nargs="+", type=Path)
    sync = commands.add_parser("sync-repository-url", help="rewrite install cells from _config.yml")
    sync.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    if args.command == "execute":
        for path in args.notebooks:
            print(f"executing {path}", flush=True)
            execute_notebook(path)
    else:
        paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
        for path in sync_repository_url(paths):
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
