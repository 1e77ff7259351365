"""The Colab editions (tools/colab_edition.py): plain Markdown that Colab renders, every number and reference of
the site, the install cell pinned, and every edition running top to bottom in a clean environment."""

import asyncio
import copy
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clean_env import COLAB_LIKE, built_dist, linked_environment, python_sees  # noqa: E402

from tools.book_index import BookIndex, site_url  # noqa: E402
from tools.book_tools import repository_url  # noqa: E402
from tools.citations import escape_markdown  # noqa: E402
from tools.colab_edition import (  # noqa: E402
    EDITION_INSTALL_MARKER,
    FORM_TITLE,
    check_site,
    install_cell_source,
    make_edition,
    write_editions,
)
from tools.myst_markdown import EditionError, SiteLink  # noqa: E402
from tools.publish_branch import publish  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SITE = site_url(repository_url())

# MyST that Colab shows as raw text: roles, directive fences, targets, equation labels, directive options, comments,
# and the book's MathJax macros (defined in _config.yml, unknown to Colab)
MYST_LEFTOVERS = {
    "role": r"\{[A-Za-z][\w:.+-]*\}`",
    "directive": r"^\s*(?:`{3,}|:{3,})\s*\{",
    "colon fence": r"^\s*:{3,}",
    "target": r"^\([^()\s]+\)=\s*$",
    "equation label": r"\$\$\s*\([^()\s]+\)",
    "directive option": r"^:(?:label|class|name|nonumber|alt|width):",
    "comment": r"^%",
    "macro": r"\\(?:E|Var)(?![A-Za-z])",
    # \[ and \( open equations in a notebook before Markdown runs: the editions write math with $ and $$ only
    "backslash delimiter": r"(?<!\\)\\[\[\]()]",
}
# What the same leftovers look like once a plain CommonMark renderer has turned them into HTML
HTML_LEFTOVERS = {
    "role": r"\{[A-Za-z][\w:.+-]*\}<code>",
    "directive": r'<code class="language-\{',
    "colon fence": r":::",
    "target": r"<p>\([^()\s]+\)=",
    "directive option": r"(?:^|>):(?:label|class|name):",
}


def markdown_cells(nb):
    return [c for c in nb.cells if c.cell_type == "markdown"]


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    out = tmp_path_factory.mktemp("colab")
    written, links = write_editions(ROOT, out, COMMIT)
    return {path.name: nbformat.read(path, as_version=4) for path in written}, links, out


# --- the editions (seven chapters, one appendix) ----------------------------------------------------------------------
def test_every_chapter_has_an_edition(editions):
    nbs, _, out = editions
    assert sorted(nbs) == [p.name for p in NOTEBOOKS] and len(nbs) == 8
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == sorted(nbs)
    assert "generated" in (out / "README.md").read_text()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_no_myst_syntax_survives(editions, notebook):
    for number, cell in enumerate(markdown_cells(editions[0][notebook.name])):
        for what, pattern in MYST_LEFTOVERS.items():
            found = re.search(pattern, cell.source, re.M)
            assert found is None, f"{notebook.name}, Markdown cell {number}: a {what} is left: {found[0]!r}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_renders_with_plain_commonmark(editions, notebook):
    """markdown-it-py without any MyST plugin (CommonMark with raw HTML, and GFM tables as Colab has them)."""
    renderer = MarkdownIt("commonmark", {"html": True}).enable("table")
    for number, cell in enumerate(markdown_cells(editions[0][notebook.name])):
        html = renderer.render(cell.source)
        for what, pattern in HTML_LEFTOVERS.items():
            found = re.search(pattern, html, re.M)
            assert found is None, f"{notebook.name}, cell {number}: a {what} rendered as text: {found[0]!r}"
        assert html.count("<details>") == html.count("</details>"), f"{notebook.name}, cell {number}"
        assert cell.source.count("$$") % 2 == 0, f"{notebook.name}, cell {number}: an unclosed $$"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_glued_numbers_are_filled_in(editions, notebook):
    source = nbformat.read(notebook, as_version=4)
    glued = {}
    for cell in source.cells:
        for out in cell.get("outputs", []):
            if "scrapbook" in out.get("metadata", {}):
                glued[out.metadata.scrapbook.name] = next(iter(out.data.values()))
    text = "\n".join(c.source for c in markdown_cells(source))
    edition = "\n".join(c.source for c in markdown_cells(editions[0][notebook.name]))
    keys = re.findall(r"\{glue:\}`([^`]+)`", text)
    for key in keys:
        value = escape_markdown(glued[key])
        assert value in edition, f"{notebook.name}: {key} = {glued[key]} is missing"
    assert "{glue" not in edition
    for cell in editions[0][notebook.name].cells:  # glue records are not outputs Colab can show
        assert not any("scrapbook" in out.get("metadata", {}) for out in cell.get("outputs", []))


CHAPTERS = [path for path in NOTEBOOKS if path.name[:2].isdigit()]  # the appendix has no exercises


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_exercises_are_sections_with_folded_solutions(editions, notebook):
    text = "\n".join(c.source for c in markdown_cells(nbformat.read(notebook, as_version=4)))
    edition = "\n".join(c.source for c in markdown_cells(editions[0][notebook.name]))
    exercises = len(re.findall(r"^(?:```|:::)\{exercise\}", text, re.M))
    solutions = len(re.findall(r"^(?:```|:::)\{solution\}", text, re.M))
    chapter = int(notebook.name[:2])  # exercises are numbered per chapter, as on the site: 2.1, 2.2, ...
    assert len(re.findall(rf"^### Exercise {chapter}\.\d+$", edition, re.M)) == exercises > 0
    folded = re.findall(rf"<details>\n<summary>Solution to Exercise {chapter}\.\d+</summary>", edition)
    assert len(folded) == solutions > 0


def test_equations_carry_the_sites_numbers_and_references_link_to_the_site(editions):
    nbs, links, _ = editions
    total = 0
    for name in sorted(nbs):  # one numbering per chapter, as on the site: (2.1), (2.2), ...
        text = "\n".join(c.source for c in markdown_cells(nbs[name]))
        tags = re.findall(r"\\tag\{([\d.]+)\}", text)
        assert tags == [f"{int(name[:2])}.{k}" for k in range(1, len(tags) + 1)], name
        total += len(tags)
    assert total > 20
    chapter1 = "\n".join(c.source for c in markdown_cells(nbs["01_warmup_problem.ipynb"]))
    assert f"[(1.1)]({SITE}notebooks/01_warmup_problem.html#equation-eq-sign-step)" in chapter1
    assert f"[Exercise 1.2]({SITE}notebooks/01_warmup_problem.html#ex-warmup-adam2k-correction)" in chapter1
    assert f"&#91;[Vaswani *et al.*, 2017]({SITE}book/references.html#cite-vaswani2017attention)&#93;" in chapter1
    assert f"[`radam.variants.Adam2k`]({SITE}book/api/optimizer.html#radam.variants.Adam2k)" in chapter1
    chapter2 = "\n".join(c.source for c in markdown_cells(nbs["02_adaptive_lr_variance.ipynb"]))
    # a figure made by a code cell (myst-nb's figure metadata) is numbered and linked like a Markdown figure
    assert f"[Fig. 2.1]({SITE}notebooks/02_adaptive_lr_variance.html#fig-02-map)" in chapter2
    assert all(link.url.startswith(SITE) for link in links)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_install_cell_pins_the_commit_and_code_is_kept(editions, notebook):
    source, edition = nbformat.read(notebook, as_version=4), editions[0][notebook.name]
    code = [c for c in edition.cells if c.cell_type == "code"]
    assert code[0].source == install_cell_source(repository_url(), COMMIT) and code[0].outputs == []
    assert f"git+{repository_url()}@{COMMIT}" in code[0].source and "@main" not in code[0].source
    original = [c for c in source.cells if c.cell_type == "code"]
    assert [c.source.removeprefix(FORM_TITLE + "\n") for c in code[1:]] == [c.source for c in original[1:]]
    assert edition.metadata["radam_edition"]["commit"] == COMMIT and "colab" in edition.metadata


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_and_note_point_to_the_edition_and_the_site(editions, notebook):
    first = markdown_cells(editions[0][notebook.name])[0].source
    badge = f"https://colab.research.google.com/github/{repository_url().removeprefix('https://github.com/')}"
    assert f"{badge}/blob/colab/notebooks/{notebook.name}" in first and "/blob/main/" not in first
    assert f"]({SITE}notebooks/{notebook.stem}.html)" in first and COMMIT[:7] in first


# --- the conversion rules, on a small book ------------------------------------------------------------------------
def small_book(tmp_path: Path, cells: list, tags: dict | None = None) -> BookIndex:
    """A book with a home page, a bibliography page and one chapter made of ``cells`` (Markdown text or code)."""
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_config.yml").write_text(
        textwrap.dedent("""\
        title: A small book
        repository: {url: "https://github.com/someone/small-book", branch: colab}
        bibtex_bibfiles: [book/refs.bib]
        sphinx:
          config:
            bibtex_cite_id: "cite-{key}"
            mathjax3_config: {tex: {macros: {E: "\\\\mathbb{E}"}}}
        """)
    )
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/01_a\n  - file: book/references\n"
    )
    (tmp_path / "book" / "intro.md").write_text("# Home\n\n$$ x $$ (eq-home)\n")
    (tmp_path / "book" / "references.md").write_text("# References\n\n```{bibliography}\n```\n")
    (tmp_path / "book" / "refs.bib").write_text(
        "@article{doe2020, title={T}, author={Doe, Jane and Roe, Rick}, journal={J}, year={2020}}\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for cell in cells:
        if isinstance(cell, str):
            nb.cells.append(nbformat.v4.new_markdown_cell(textwrap.dedent(cell)))
        else:
            nb.cells.append(cell)
    for number, cell_tags in (tags or {}).items():
        nb.cells[number].metadata["tags"] = cell_tags
    nbformat.write(nb, tmp_path / "notebooks" / "01_a.ipynb")
    return BookIndex(tmp_path)


def install_cell():
    return nbformat.v4.new_code_cell("# Colab only: install the radam package\nimport sys")


def glue_cell(**values):
    cell = nbformat.v4.new_code_cell("glue(...)", execution_count=2)
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"application/papermill.record/text/plain": text},
            metadata={"scrapbook": {"name": key, "mime_prefix": "application/papermill.record/"}},
        )
        for key, text in values.items()
    ] + [nbformat.v4.new_output("stream", name="stdout", text="printed\n")]
    return cell


def convert(tmp_path, markdown, extra_cells=(), tags=None):
    index = small_book(tmp_path, [textwrap.dedent(markdown), install_cell(), *extra_cells], tags)
    nb, links = make_edition(index, "notebooks/01_a", COMMIT)
    return nb, links


def test_glue_roles_print_what_the_site_prints(tmp_path):
    nb, _ = convert(
        tmp_path,
        "# A\n\n{glue:}`x`, {glue:text}`x:.2f`, {glue:text}`name`, {glue:}`name`, {glue:}`l`.\n",
        [glue_cell(x="0.12345", name="'H200'", l="[1, 2]")],
    )
    assert nb.cells[0].source.rstrip().endswith("0.12345, 0.12, H200, 'H200', &#91;1, 2&#93;.")
    outputs = nb.cells[2].outputs
    assert [o.output_type for o in outputs] == ["stream"], "glue records are dropped, other outputs kept"


def test_a_missing_glue_key_names_the_cell_and_the_key(tmp_path):
    with pytest.raises(EditionError, match=r"notebooks/01_a.ipynb, cell 0: .*'nowhere'"):
        convert(tmp_path, "# A\n\n{glue:}`nowhere`\n")


def test_equations_citations_and_references(tmp_path):
    nb, links = convert(
        tmp_path,
        r"""
        # A

        (sec-a)=
        ## Section *one*

        $$
        \E[x] = 1
        $$ (eq-a)

        ```{math}
        :label: eq-b
        y = 2
        ```

        See {eq}`eq-a`, {eq}`eq-home`, {eq}`the second <eq-b>`, {ref}`sec-a`, [](#eq-b) and {cite:t}`doe2020`
        {cite:p}`doe2020`. {doc}`../book/references`, {func}`~numpy.sum`.
        """,
    )
    text = nb.cells[0].source
    page = "https://someone.github.io/small-book/notebooks/01_a.html"
    assert "\\mathbb{E}[x] = 1\n\\tag{2}\n$$" in text and "y = 2\n\\tag{3}\n$$" in text  # the home page has (1)
    assert f"See [(2)]({page}#equation-eq-a), [(1)](https://someone.github.io/small-book/book/intro.html" in text
    assert f"[the second]({page}#equation-eq-b), [Section one]({page}#sec-a), [(3)]({page}#equation-eq-b)" in text
    refs = "https://someone.github.io/small-book/book/references.html"
    assert f"Doe and Roe &#91;[2020]({refs}#cite-doe2020)&#93;\n" in text
    assert f"&#91;[Doe and Roe, 2020]({refs}#cite-doe2020)&#93;. " in text
    assert f"[References]({refs}), `sum()`." in text
    assert "(sec-a)=" not in text and "\\E" not in text
    assert SiteLink(f"{page}#equation-eq-a", "equation", "(2)") in links


def test_exercises_solutions_and_admonitions(tmp_path):
    nb, _ = convert(
        tmp_path,
        """
        # A

        :::{exercise} A title
        :label: ex-one
        Do *this*.
        :::

        ````{solution} ex-one
        :class: dropdown
        Because.

        ```python
        print(1)
        ```
        ````

        ```{note}
        Two lines
        of note.
        ```

        ```{admonition} Deep dive
        :class: dropdown
        Folded.
        ```
        """,
    )
    text = nb.cells[0].source
    assert "### Exercise 1 (A title)\n\nDo *this*." in text
    solution = "<details>\n<summary>Solution to Exercise 1</summary>\n\nBecause.\n\n```python\nprint(1)\n```\n\n"
    solution += "</details>"
    assert solution in text
    assert "> **Note**\n>\n> Two lines\n> of note." in text
    assert "<details>\n<summary><b>Deep dive</b></summary>\n\nFolded.\n\n</details>" in text


def test_an_unknown_directive_is_an_error_not_a_leftover(tmp_path):
    for number, (markdown, message) in enumerate(
        [
            ("::::{tab-set}\nx\n::::", r"cell 0: the directive \{tab-set\}"),
            ("{ref}`ex-none`", r"cell 0: a reference to 'ex-none'"),
            ("{abbr}`A (a)`", r"cell 0: the role \{abbr\}"),
        ]
    ):
        (tmp_path / str(number)).mkdir()
        with pytest.raises(EditionError, match=message):
            convert(tmp_path / str(number), f"# A\n\n{markdown}\n")


def test_hidden_code_is_kept_and_folded(tmp_path):
    hidden = nbformat.v4.new_code_cell("check = 1", execution_count=3)
    hidden.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    removed = nbformat.v4.new_code_cell("later = check", execution_count=4)
    removed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="noise\n")]
    nb, _ = convert(
        tmp_path,
        "# A\n",
        [hidden, removed, nbformat.v4.new_markdown_cell("internal")],
        tags={2: ["remove-input"], 3: ["remove-cell"], 4: ["remove-cell"]},
    )
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.startswith(EDITION_INSTALL_MARKER)
    assert code[1].source == f"{FORM_TITLE}\ncheck = 1" and code[1].metadata["cellView"] == "form"
    assert code[1].outputs[0].text == "ok\n"
    assert code[2].source == f"{FORM_TITLE}\nlater = check" and code[2].outputs == []
    assert "internal" not in [c.source for c in nb.cells]


def test_check_site_finds_missing_anchors_and_other_numbers(tmp_path):
    (tmp_path / "book").mkdir()
    index = small_book(tmp_path / "book", ["# A", install_cell()])
    site = tmp_path / "html"
    (site / "notebooks").mkdir(parents=True)
    button = "https://colab.research.google.com/github/someone/small-book/blob/colab/notebooks/01_a.ipynb"
    (site / "notebooks" / "01_a.html").write_text(
        f'<a href="{button}"></a><div id="equation-eq-a">\n<span class="eqno">(2)<a></a></span></div>'
    )
    page = "https://someone.github.io/small-book/notebooks/01_a.html"
    assert check_site(site, index, [SiteLink(f"{page}#equation-eq-a", "equation", "(2)")]) == []
    problems = check_site(
        site,
        index,
        [
            SiteLink(f"{page}#equation-eq-a", "equation", "(3)"),
            SiteLink(f"{page}#nowhere"),
            SiteLink(page.replace("01_a", "02_b")),
        ],
    )
    assert len(problems) == 3 and "(3)" in problems[0] + problems[1] + problems[2]
    (site / "notebooks" / "01_a.html").write_text("no button")
    assert any("Colab button" in p for p in check_site(site, index, []))


# --- the site's address -----------------------------------------------------------------------------------------
def test_site_url_follows_the_repository_url():
    assert site_url("https://github.com/radam-book/radam-book") == "https://radam-book.github.io/radam-book/"
    assert site_url("https://github.com/Some-One/some-one.github.io") == "https://some-one.github.io/"
    with pytest.raises(ValueError, match="not a GitHub repository"):
        site_url("https://gitlab.com/a/b")


def test_readme_and_home_page_name_the_site_and_both_installs():
    for page in (ROOT / "README.md", ROOT / "book" / "intro.md"):
        text = page.read_text()
        assert SITE in text, f"{page.name} does not name the site {SITE} (derived from _config.yml)"
        assert "pip install radam" in text and f"git+{repository_url()}" in text


# --- publishing to the branch -------------------------------------------------------------------------------------
def test_publish_adds_one_commit_per_change_to_the_branch(tmp_path, monkeypatch):
    for key in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{key}_NAME", "test")
        monkeypatch.setenv(f"GIT_{key}_EMAIL", "test@example.org")

    def git(*a, cwd=tmp_path):
        return subprocess.run(["git", *a], cwd=cwd, check=True, capture_output=True, text=True)

    git("init", "--quiet", "--bare", "remote.git")
    git("init", "--quiet", "clone")
    clone = tmp_path / "clone"
    git("remote", "add", "origin", str(tmp_path / "remote.git"), cwd=clone)
    folder = tmp_path / "editions"
    (folder / "notebooks").mkdir(parents=True)
    (folder / "notebooks" / "a.ipynb").write_text("a")
    first = publish(folder, "colab", "first", repo=clone)
    assert publish(folder, "colab", "again", repo=clone) is None  # nothing changed, nothing committed
    (folder / "notebooks" / "a.ipynb").unlink()
    (folder / "notebooks" / "b.ipynb").write_text("b")
    second = publish(folder, "colab", "second", repo=clone)
    remote = tmp_path / "remote.git"
    assert git("rev-list", "colab", cwd=remote).stdout.split() == [second, first]
    assert git("ls-tree", "-r", "--name-only", "colab", cwd=remote).stdout.split() == ["notebooks/b.ipynb"]
    with pytest.raises(FileNotFoundError, match="make colab"):
        publish(tmp_path / "missing", "colab", "x", repo=clone)


# --- every edition runs in a clean environment ------------------------------------------------------------------
@pytest.fixture(scope="module")
def colab_like_kernel(tmp_path_factory):
    """A clean environment with what Colab has (not radam) and a Jupyter kernel for it; the wheel of this checkout."""
    folder = tmp_path_factory.mktemp("colab-like")
    python = linked_environment(folder / "env", COLAB_LIKE)
    assert python_sees(python, "torch") and not python_sees(python, "radam")
    kernels = folder / "jupyter"
    spec = kernels / "kernels" / "colab-like"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Colab-like",
                "language": "python",
            }
        )
    )
    wheel = next(built_dist().glob("*.whl"))
    return kernels, python, wheel


def test_every_edition_runs_top_to_bottom_in_a_clean_environment(editions, colab_like_kernel, tmp_path, monkeypatch):
    """Each install cell, pointed at the wheel of this checkout instead of the network, installs radam into an
    environment that lacks it; every cell then runs, from an empty folder (Colab has no repository files).

    The first edition runs alone (its install cell installs radam), the others two at a time (each kernel uses one
    thread; their install cells find radam installed).
    """
    kernels, python, wheel = colab_like_kernel
    monkeypatch.setenv("JUPYTER_PATH", str(kernels))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    pinned = f'"radam @ git+{repository_url()}@{COMMIT}"'
    runs = {}
    for name, nb in sorted(editions[0].items()):
        nb = copy.deepcopy(nb)
        install = next(c for c in nb.cells if c.cell_type == "code")
        assert pinned in install.source
        install.source = install.source.replace(pinned, f'--no-index "radam @ {wheel.as_uri()}"')
        nb.cells.append(nbformat.v4.new_code_cell("import radam; print(radam.__file__)"))
        (tmp_path / name).mkdir()
        runs[name] = nb

    async def execute(name, nb, slots):
        async with slots:
            client = NotebookClient(
                nb, timeout=600, kernel_name="colab-like", resources={"metadata": {"path": str(tmp_path / name)}}
            )
            try:
                await client.async_execute()
            except Exception as error:  # noqa: BLE001 (reported with the edition's name below)
                return f"{name}: {type(error).__name__}: {str(error)[-1500:]}"
            where = nb.cells[-1].outputs[0].text.strip()
            if not where.startswith(str(python.parent.parent)):
                return f"{name}: radam came from {where}, not the clean environment"
            return None

    async def execute_all():
        first, *rest = runs.items()
        failures = [await execute(*first, asyncio.Semaphore(1))]
        slots = asyncio.Semaphore(2)
        return failures + list(await asyncio.gather(*(execute(name, nb, slots) for name, nb in rest)))

    failures = [f for f in asyncio.run(execute_all()) if f]
    assert not failures, "\n\n".join(failures)
