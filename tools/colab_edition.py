"""The Colab edition of every chapter: ``python -m tools.colab_edition`` (what ``make colab`` runs).

Colab renders plain Markdown, not MyST, so each chapter is rewritten from the committed notebook and its outputs into
``_build/colab/notebooks/NN_name.ipynb`` (the layout the site's Colab buttons expect on the branch they open,
``repository.branch`` in ``_config.yml``; the book workflow publishes the folder to that branch):

* Markdown cells: glued numbers filled in, citations, references and equations as the site shows them, exercises as
  sections and solutions folded in ``<details>`` (see :mod:`tools.myst_markdown`); a note under the title names the
  chapter's page on the site and the commit.
* The install cell installs ``radam`` at the commit the edition was made from, so a later change of the package
  cannot break an edition.
* Code is never dropped, since later cells use what it computes. Cells the site hides (tags ``remove-input``,
  ``hide-input``, ``remove-cell``, ``hide-cell``) become Colab form cells (``cellView: form`` and a ``#@title``
  line), which show a title and fold the code away; ``remove-output`` and ``remove-cell`` drop the saved outputs.
  Glue records (outputs Colab cannot display) are dropped; every other output is kept, so the chapter reads as on
  the site before it is run.

``--check-site _build/html`` checks every link into the site against a built site: the page and anchor exist, the
numbers agree, and each chapter's Colab button opens its edition.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from myst_nb.ext.glue import extract_glue_data_cell

from tools.book_index import BookIndex
from tools.book_tools import INSTALL_CELL_MARKER, colab_badge_target
from tools.citations import Citations
from tools.myst_markdown import EditionError, PageConverter, SiteLink

__all__ = [
    "make_edition",
    "write_editions",
    "check_site",
    "install_cell_source",
    "FORM_TITLE",
    "EDITION_INSTALL_MARKER",
    "main",
]

ROOT = Path(__file__).resolve().parent.parent
FORM_TITLE = "#@title Code hidden in the book's text (double-click to show it)"
EDITION_INSTALL_MARKER = "# Install the radam package"
FOLDED_TAGS = {"remove-input", "hide-input", "remove-cell", "hide-cell"}
NO_OUTPUT_TAGS = {"remove-output", "remove-cell"}


def install_cell_source(repository_url: str, commit: str) -> str:
    """The edition's install cell: the package exactly as it was when the edition was made."""
    return (
        f"{EDITION_INSTALL_MARKER} at the commit this edition was made from (in Colab, Colab's own torch is kept).\n"
        f'%pip install --quiet "radam @ git+{repository_url}@{commit}"'
    )


def make_edition(index: BookIndex, page: str, commit: str) -> tuple[nbformat.NotebookNode, list[SiteLink]]:
    """The Colab edition of one chapter (a docname of ``index``) and the links it makes into the site."""
    path = index.sources[page]
    where = path.relative_to(index.root)
    nb = nbformat.read(path, as_version=4)
    glue: dict[str, dict] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            glue.update({key: output["data"] for key, output in extract_glue_data_cell(cell)})
    folder = Path(page).parent
    converter = PageConverter(
        index,
        page,
        glue,
        raw_url=lambda p: f"{_raw_base(index.repository_url, commit)}{(folder / p).as_posix()}",
        citations=Citations(index.bibliography_files(), index.citation_url),
    )
    cells, installed, titled = [], False, False
    for number, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", []))
        cell.metadata.pop("execution", None)
        if cell.cell_type == "raw" or (cell.cell_type == "markdown" and "remove-cell" in tags):
            continue
        if cell.cell_type == "markdown":
            try:
                cell.source = converter.convert(cell.source)
            except EditionError as error:
                raise EditionError(f"{where}, cell {number}: {error}") from None
            if not titled:
                cell.source, titled = _with_edition_note(cell.source, index, page, commit), True
        elif not installed and cell.source.startswith(INSTALL_CELL_MARKER):
            cell.source, cell.outputs, installed = install_cell_source(index.repository_url, commit), [], True
        else:
            if tags & FOLDED_TAGS:
                cell.metadata["cellView"] = "form"
                cell.source = f"{FORM_TITLE}\n{cell.source}"
            if tags & NO_OUTPUT_TAGS:
                cell.outputs = []
        cells.append(cell)
    if not installed:
        raise EditionError(f"{where}: no Colab install cell (a code cell starting with {INSTALL_CELL_MARKER!r})")
    nb.cells = cells
    nb.metadata["colab"] = {"provenance": [], "toc_visible": True}
    nb.metadata["radam_edition"] = {"source": where.as_posix(), "commit": commit, "site": index.page_url(page)}
    nbformat.validate(nb)
    return nb, converter.links


def _raw_base(repository_url: str, commit: str) -> str:
    owner_repo = repository_url.removeprefix("https://github.com/")
    return f"https://raw.githubusercontent.com/{owner_repo}/{commit}/"


def _with_edition_note(markdown: str, index: BookIndex, page: str, commit: str) -> str:
    """The first Markdown cell with a note under the title (its Colab badge already opens the edition:
    ``make repository-url`` keeps it so, and a test checks it)."""
    chapter = index.chapter_numbers.get(page)
    numbered = chapter is not None  # pages outside the numbered parts are the appendix
    kind, name = (f"chapter {chapter}", "chapter") if numbered else ("an appendix", "appendix")
    note = (
        f"> This is the Colab edition of {kind} of *{index.config['title']}*. The {name}'s "
        f"[page on the book's website]({index.page_url(page)}) shows the same text and outputs. The first code cell "
        f"installs the `radam` package as of commit [`{commit[:7]}`]({index.repository_url}/tree/{commit}), "
        f"the version this {name} was written for."
    )
    lines = markdown.split("\n")
    title = next((k for k, line in enumerate(lines) if line.startswith("# ")), -1)
    return "\n".join(lines[: title + 1] + ["", note] + lines[title + 1 :])


def write_editions(root: Path, out: Path, commit: str) -> tuple[list[Path], list[SiteLink]]:
    """Write the edition of every chapter under ``out`` (``out/notebooks/NN_name.ipynb``); return paths and links."""
    index = BookIndex(root)
    written, links = [], []
    editions = [(page, *make_edition(index, page, commit)) for page in index.chapters()]  # all convert, or none
    for page, nb, page_links in editions:
        target = out / index.sources[page].relative_to(index.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
        links += page_links
    (out / "README.md").write_text(_branch_readme(index, commit), encoding="utf-8")
    return written, links


def _branch_readme(index: BookIndex, commit: str) -> str:
    return (
        f"# Colab editions of *{index.config['title']}*\n\n"
        f"The chapters of the book ({index.site_url}) as notebooks that Colab renders, made by `make colab` from "
        f"commit {commit} of {index.repository_url}. Do not edit them here: they are generated from the notebooks "
        "of the main branch, and each is replaced when the book is published.\n"
    )


def check_site(site: Path, index: BookIndex, links: list[SiteLink]) -> list[str]:
    """What a built site contradicts: links to missing pages or anchors, other numbers, Colab buttons elsewhere."""
    problems, pages = [], {}
    for link in sorted(set(links), key=lambda link: link.url):
        if not link.url.startswith(index.site_url):
            problems.append(f"{link.url}: not on the site {index.site_url}")
            continue
        file, _, anchor = link.url.removeprefix(index.site_url).partition("#")
        if file not in pages:
            pages[file] = (site / file).read_text(encoding="utf-8") if (site / file).is_file() else None
        html = pages[file]
        if html is None:
            problems.append(f"{link.url}: the site has no page {file}")
        elif anchor and f'id="{anchor}"' not in html:
            problems.append(f"{link.url}: the page has no anchor {anchor!r}")
        elif link.kind == "equation" and not re.search(
            rf'id="{re.escape(anchor)}">\s*<span class="eqno">{re.escape(link.text)}<', html
        ):
            problems.append(f"{link.url}: the site does not number this equation {link.text}")
        elif link.kind == "exercise" and not re.search(
            rf'id="{re.escape(anchor)}">\s*<p class="admonition-title"><span class="caption-number">'
            rf"{re.escape(link.text)} <",
            html,
        ):
            problems.append(f"{link.url}: the site does not call this {link.text}")
    branch = index.config["repository"]["branch"]
    for page in index.chapters():
        html_path = site / f"{page}.html"
        button = colab_badge_target(index.repository_url, branch, index.sources[page].name)
        if not html_path.is_file() or button not in html_path.read_text(encoding="utf-8"):
            problems.append(f"{page}.html: no Colab button opening {button}")
    return problems


def current_commit(root: Path) -> str:
    """The commit checked out in ``root``; warns when chapters or package differ from it (the edition pins it)."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", "notebooks", "radam", "book", "_config.yml", "_toc.yml"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if changed.strip():
        print(
            "warning: uncommitted changes to the book or the package; the editions install the package as of the "
            "last commit, which does not have them",
            file=sys.stderr,
        )
    return commit.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.colab_edition", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's root (default: this repository)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "colab", help="default: _build/colab")
    parser.add_argument("--commit", help="the commit the install cells pin (default: the checked-out one)")
    parser.add_argument("--check-site", type=Path, metavar="HTML", help="a built site to check the links against")
    args = parser.parse_args(argv)
    commit = args.commit or current_commit(args.root)
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        parser.error(f"--commit must be a full 40-digit commit hash, not {commit!r}")
    try:
        written, links = write_editions(args.root, args.out, commit)
    except (EditionError, KeyError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if args.check_site:
        problems = check_site(args.check_site, BookIndex(args.root), links)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            print(
                "(a site built before the last change of the book or of _config.yml is stale: `make clean book`)",
                file=sys.stderr,
            )
            return 1
        print(f"checked {len(set(links))} links against {args.check_site}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
