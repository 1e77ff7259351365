"""What a reader sees: the mechanical part of the book's reading conventions, on the pages that follow them.

A chapter joins READER_PASSED once it has been rewritten for its readers: its bookkeeping (glue calls, asserts)
lives in cells whose input is removed from the page, its visible code fits the column, it never talks about how
the book was made, and nothing is printed below its exercises. The bibliography lists what the book cites, each
entry labelled as the text cites it.
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parent.parent
READER_PASSED = [
    "01_warmup_problem",
    "02_adaptive_lr_variance",
    "03_ema_as_sma",
    "04_rectification",
    "05_radam_in_code",
    "06_training_comparisons",
    "07_performance",
    "reproducing_results",
]
READER_PASSED_PAGES = ["book/intro.md"]
MAX_VISIBLE_ASSERTS = 5  # in the whole book; for now counted over the chapters in READER_PASSED
MAX_CODE_LINE = 100
HIDDEN_INPUT = {"remove-input", "remove-cell"}

# Words about how the book is made (sessions, device time, attempts, reviews), not about RAdam.
PROCESS_TALK = [
    r"\bsessions?\b",
    r"device time",
    r"first attempt",
    r"\bhelpers?\b",
    r"\breview(er|ers|s)?\b",
    r"this project",
    r"\bgoals?\b",
    r"time limit",
    r"ran out of",
    r"\b(has|have|had) not (yet )?(been )?(run|completed|finished)",
    r"not yet (been )?(run|completed|finished)",
    r"not run by (this|the) book",
    r"silently contradict",
    r"\b(TODO|FIXME|XXX)\b",
]


def chapter(name):
    return nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)


def visible_code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and not HIDDEN_INPUT & set(c.metadata.get("tags", []))]


def shown_text(nb):
    """The text a reader of the page sees: Markdown, visible code and every output that is not a glue record."""
    parts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    parts += [c.source for c in visible_code_cells(nb)]
    for cell in nb.cells:
        if cell.cell_type != "code" or "remove-cell" in cell.metadata.get("tags", []):
            continue
        for out in cell.outputs:
            parts.append(out.get("text", ""))
            parts += [v for k, v in out.get("data", {}).items() if k in ("text/plain", "text/markdown")]
    return "\n".join(parts)


@pytest.fixture(params=READER_PASSED)
def passed(request):
    return request.param, chapter(request.param)


def test_no_visible_cell_glues(passed):
    name, nb = passed
    for cell in visible_code_cells(nb):
        assert "glue(" not in cell.source, f"{name}: a visible cell calls glue (tag it remove-input):\n{cell.source}"


def test_visible_code_fits_the_column(passed):
    name, nb = passed
    for cell in visible_code_cells(nb):
        for line in cell.source.splitlines():
            assert len(line) <= MAX_CODE_LINE, f"{name}: a visible code line of {len(line)} characters: {line}"


def test_no_talk_about_how_the_book_is_made(passed):
    name, nb = passed
    text = shown_text(nb)
    for pattern in PROCESS_TALK:
        match = re.search(pattern, text, re.IGNORECASE)
        assert not match, f"{name}: {match.group(0)!r} in: {text[max(0, match.start() - 80) : match.end() + 80]!r}"


@pytest.mark.parametrize("page", READER_PASSED_PAGES)
def test_no_talk_about_how_the_book_is_made_on_the_pages(page):
    text = (ROOT / page).read_text()
    for pattern in PROCESS_TALK:
        match = re.search(pattern, text, re.IGNORECASE)
        assert not match, f"{page}: {match.group(0)!r} in: {text[max(0, match.start() - 80) : match.end() + 80]!r}"


def test_process_talk_is_caught():
    """The patterns are not vacuous: sentences like those a reader once found do fail."""
    for sentence in [
        "the full-size GPU runs have not completed yet",
        "a first attempt on an H200 ran out of the device time it had",
        "The goals this project set itself",
        "The first run was stopped by its time limit",
    ]:
        assert any(re.search(p, sentence, re.IGNORECASE) for p in PROCESS_TALK), sentence


def test_few_asserts_are_visible():
    visible = {
        name: sum(len(re.findall(r"^\s*assert\b", c.source, re.M)) for c in visible_code_cells(chapter(name)))
        for name in READER_PASSED
    }
    assert sum(visible.values()) <= MAX_VISIBLE_ASSERTS, f"visible asserts per chapter: {visible}"


def test_nothing_is_printed_below_the_exercises(passed):
    name, nb = passed
    headings = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## Exercises" in c.source]
    if not name[:2].isdigit():  # an appendix has no exercises
        assert not headings, f"{name}: an appendix with exercises"
        return
    assert headings, f"{name}: no Exercises section"
    for cell in nb.cells[headings[0] :]:
        if cell.cell_type != "code" or "remove-cell" in cell.metadata.get("tags", []):
            continue
        assert "remove-input" in cell.metadata.get("tags", []), f"{name}: a visible cell below the exercises"
        for out in cell.outputs:
            kinds = set(out.get("data", {})) if out.output_type == "display_data" else {out.output_type}
            assert all(k.startswith("application/papermill.record/") for k in kinds), (
                f"{name}: a cell below the exercises shows {kinds}: the answers would be printed"
            )


# --- the bibliography --------------------------------------------------------------------------------------------


def test_the_bibliography_lists_only_what_is_cited():
    page = (ROOT / "book" / "references.md").read_text()
    assert "```{bibliography}" in page
    assert ":all:" not in page, "the bibliography lists uncited entries (:all:)"


def test_every_citation_is_in_the_bibliography():
    keys = set(parse_file(ROOT / "book" / "references.bib").entries)
    sources = [p.read_text() for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    sources += [p.read_text() for p in sorted((ROOT / "book").glob("*.md"))]
    cited = {
        key for text in sources for roles in re.findall(r"\{cite:\w+\}`([^`]+)`", text) for key in roles.split(",")
    }
    assert cited and {k.strip() for k in cited} <= keys, {k.strip() for k in cited} - keys


def _bibliography_style():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import author_year_bibliography
    finally:
        sys.path.pop(0)
    return author_year_bibliography


def test_labels_are_the_citations_and_not_mangled():
    style = _bibliography_style()
    entries = sorted(
        parse_file(ROOT / "book" / "references.bib").entries.values(),
        key=lambda e: (style.author_label(e), e.fields["year"], e.fields["title"]),
    )
    labels = dict(zip((e.key for e in entries), style.author_year_labels(entries)))
    name = r"[^\W\d_][\w'’-]*( [^\W\d_][\w'’-]*)*"
    for key, label in labels.items():
        assert re.fullmatch(rf"{name}( and {name}| et al\.)?, \d{{4}}[a-z]?", label), f"{key}: label {label!r}"
    assert labels["kingma2015adam"] == "Kingma and Ba, 2015"
    assert labels["goyal2017accurate"] == "Goyal et al., 2017"  # once "GDollarG+17"
    assert {labels["liu2020radam"], labels["liu2020transformer"]} == {"Liu et al., 2020a", "Liu et al., 2020b"}
    assert len(set(labels.values())) == len(labels)


def test_the_book_uses_the_author_year_styles():
    config = (ROOT / "_config.yml").read_text()
    assert "bibtex_default_style: author_year" in config
    assert "bibtex_reference_style: author_year_label" in config
