"""The book as the website shows it: its address, its pages in order, and what every label points to.

The site's address follows from ``repository.url`` in ``_config.yml`` (GitHub Pages serves
``https://github.com/OWNER/REPO`` at ``https://OWNER.github.io/REPO/``), so it is written in one place.

Numbers are the site's: the chapters of the numbered parts of ``_toc.yml`` are numbered 1, 2, ... in order, and
inside chapter ``n`` the labelled equations, exercises and figures with captions are numbered ``n.1``, ``n.2``, ...,
each kind in its own sequence (``numfig_secnum_depth: 1``); pages outside the numbered parts share one unprefixed
sequence per kind. This index numbers them the same way. ``tools.colab_edition --check-site``
compares every number and anchor with a built site.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from docutils.nodes import make_id

from tools.myst_blocks import EQUATION_LABEL, TARGET_LINE, split_blocks

__all__ = ["Target", "BookIndex", "site_url"]

_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.M)
_AUTODOC = re.compile(r"^\s*\.\. auto(?P<kind>module|class|function)::\s*(?P<name>[\w.]+)\s*$")
_AUTODOC_OPTION = re.compile(r"^\s+:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_INLINE_MARKUP = re.compile(r"\{[\w:.+-]+\}`([^`]*)`|`([^`]*)`|\*+([^*]+)\*+")


def site_url(repository_url: str) -> str:
    """The GitHub Pages address of a repository's site, ending in a slash.

    >>> site_url("https://github.com/radam-book/radam-book")
    'https://radam-book.github.io/radam-book/'
    """
    match = re.fullmatch(r"https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?", repository_url)
    if match is None:
        raise ValueError(f"repository.url {repository_url!r} is not a GitHub repository URL (https://github.com/O/R)")
    owner, repo = match["owner"], match["repo"]
    if repo.lower() == f"{owner.lower()}.github.io":  # a user or organisation site is served at the root
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{repo}/"


@dataclass(frozen=True)
class Target:
    """Where a label points on the site (``page`` is a docname such as ``notebooks/02_x``) and what a reference to
    it shows: ``(3)`` for an equation, ``Exercise 4``, a section's title."""

    page: str
    anchor: str
    text: str
    kind: str  # "equation", "exercise", "figure", "section", "page"


@dataclass
class PageNumbers:
    """The numbers of one page's numbered blocks, in the order they appear (unlabelled ones included)."""

    exercises: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


CODE_FIGURE = "code-cell-figure"  # stands, in a notebook's Markdown, for a code cell whose output is a named figure


def _cell_figure(cell: dict) -> dict:
    """The ``mystnb.figure`` options of a code cell (its output becomes a numbered figure), or ``{}``."""
    if cell["cell_type"] != "code":
        return {}
    figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
    return figure if figure.get("name") else {}


def _cell_markdown(cell: dict) -> str:
    if cell["cell_type"] == "markdown":
        return "".join(cell["source"])
    figure = _cell_figure(cell)
    return f":::{{{CODE_FIGURE}}}\n:name: {figure['name']}\n{figure.get('caption', '')}\n:::"


class BookIndex:
    """Reads ``_config.yml``, ``_toc.yml`` and every page once; answers what a label, a page or an API name is."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.config = yaml.safe_load((self.root / "_config.yml").read_text(encoding="utf-8"))
        self.repository_url: str = self.config["repository"]["url"].rstrip("/")
        self.site_url = site_url(self.repository_url)
        toc = yaml.safe_load((self.root / "_toc.yml").read_text(encoding="utf-8"))
        self.pages = _toc_pages(toc)
        self.chapter_numbers = _chapter_numbers(toc)
        self.sources = {page: self._source_path(page) for page in self.pages}
        self.targets: dict[str, Target] = {}
        self.numbers: dict[str, PageNumbers] = {}
        self.titles: dict[str, str] = {}
        self._api_pages: dict[str, str] = {}  # documented module, class or function -> the API page that has it
        self._api_modules: dict[str, set[str] | None] = {}
        self._api_classes: set[str] = set()
        self.bibliography_page = ""
        unnumbered = _Counters("")  # pages outside the numbered parts share one sequence per kind
        for page in self.pages:
            chapter = self.chapter_numbers.get(page)
            counters = _Counters(f"{chapter}.") if chapter is not None else unnumbered
            self.numbers[page] = PageNumbers()
            text = self.markdown(page)
            heading = _HEADING.search(text)
            self.titles[page] = plain_title(heading["title"]) if heading else page
            self.targets.setdefault(page, Target(page, "", self.titles[page], "page"))
            self._scan(page, text, counters)

    # --- pages -------------------------------------------------------------------------------------------------
    def _source_path(self, page: str) -> Path:
        for suffix in (".ipynb", ".md"):
            if (path := self.root / f"{page}{suffix}").exists():
                return path
        raise FileNotFoundError(f"_toc.yml lists {page!r}, but neither {page}.ipynb nor {page}.md exists")

    def markdown(self, page: str) -> str:
        """A page's MyST Markdown: the file itself, or a notebook's Markdown cells joined by blank lines."""
        path = self.sources[page]
        if path.suffix == ".md":
            return _without_front_matter(path.read_text(encoding="utf-8"))
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n\n".join(_cell_markdown(c) for c in cells if c["cell_type"] == "markdown" or _cell_figure(c))

    def page_url(self, page: str) -> str:
        return f"{self.site_url}{page}.html"

    def url(self, target: Target) -> str:
        return self.page_url(target.page) + (f"#{target.anchor}" if target.anchor else "")

    def chapters(self) -> list[str]:
        """The pages that are notebooks, in reading order: chapter ``n`` is ``chapters()[n - 1]``."""
        return [page for page in self.pages if self.sources[page].suffix == ".ipynb"]

    def resolve_document(self, reference: str, from_page: str) -> str:
        """The docname a ``{doc}`` reference names, relative to the referring page or absolute (``/book/api``)."""
        if reference.startswith("/"):
            page = reference.lstrip("/")
        else:
            page = str(Path(from_page).parent / reference)
        page = str(Path(page)).removesuffix(".md").removesuffix(".ipynb")
        parts: list[str] = []
        for part in page.split("/"):
            if part == "..":
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        page = "/".join(parts)
        if page not in self.sources:
            raise KeyError(f"{reference!r} (from {from_page}) is not a page of the book")
        return page

    # --- citations ---------------------------------------------------------------------------------------------
    def bibliography_files(self) -> list[Path]:
        return [self.root / f for f in self.config.get("bibtex_bibfiles", [])]

    def citation_url(self, key: str) -> str:
        """The bibliography entry of ``key`` on the site (its anchor is stable when ``bibtex_cite_id`` is set)."""
        if not self.bibliography_page:
            raise ValueError("the book cites, but no page holds a {bibliography} directive")
        template = self.config.get("sphinx", {}).get("config", {}).get("bibtex_cite_id", "")
        if not template:
            return self.page_url(self.bibliography_page)
        return f"{self.page_url(self.bibliography_page)}#{make_id(template.format(key=key, bibliography_count=1))}"

    # --- the API reference ---------------------------------------------------------------------------------------
    def api_url(self, role: str, name: str) -> str | None:
        """Where the API reference documents a Python object (page and anchor), or None if it does not."""
        parent, _, member = name.rpartition(".")
        if role == "mod":
            return f"{self.page_url(self._api_pages[name])}#module-{name}" if name in self._api_modules else None
        members = self._api_modules.get(parent, set())
        if name in self._api_classes or parent in self._api_classes or members is None or member in members:
            page = self._api_pages.get(name) or self._api_pages.get(parent)
            return f"{self.page_url(page)}#{name}" if page else None
        return None

    # --- scanning ----------------------------------------------------------------------------------------------
    def _scan(self, page: str, text: str, counters: _Counters) -> None:
        for block in split_blocks(text):
            if block.kind == "text":
                self._scan_text(page, block.text, counters)
            elif block.kind == "directive":
                self._scan_directive(page, block, counters)

    def _scan_text(self, page: str, text: str, counters: _Counters) -> None:
        for match in EQUATION_LABEL.finditer(text):
            label, number = match["label"], counters.next("equation")
            self._add(label, Target(page, f"equation-{label}", f"({number})", "equation"))
        for match in TARGET_LINE.finditer(text):
            heading = _HEADING.search(text, match.end())
            title = plain_title(heading["title"]) if heading else match["label"]
            self._add(match["label"], Target(page, match["label"], title, "section"))

    def _scan_directive(self, page: str, block, counters: _Counters) -> None:
        label = block.options.get("label") or block.options.get("name", "")
        if block.name == "exercise" and "nonumber" not in block.options:
            number = counters.next("exercise")
            self.numbers[page].exercises.append(number)
            if label:
                self._add(label, Target(page, label, f"Exercise {number}", "exercise"))
        elif block.name == "math" and label:
            self._add(label, Target(page, f"equation-{label}", f"({counters.next('equation')})", "equation"))
        elif block.name in ("figure", "glue:figure") and block.body.strip():
            number = counters.next("figure")
            self.numbers[page].figures.append(number)
            if label:
                self._add(label, Target(page, label, f"Fig. {number}", "figure"))
        elif block.name == CODE_FIGURE:  # a code cell's figure (myst-nb numbers it in the same sequence)
            self._add(label, Target(page, label, f"Fig. {counters.next('figure')}", "figure"))
        elif block.name == "bibliography":
            self.bibliography_page = page
        elif block.name == "eval-rst":
            self._scan_autodoc(page, block.body)
        if block.name not in ("code", "code-block", "code-cell", "eval-rst", "math"):
            self._scan(page, block.body, counters)

    def _scan_autodoc(self, page: str, rst: str) -> None:
        lines = rst.split("\n")
        for k, line in enumerate(lines):
            if not (match := _AUTODOC.match(line)):
                continue
            name = match["name"]
            self._api_pages.setdefault(name, page)
            if match["kind"] == "class":
                self._api_classes.add(name)
            elif match["kind"] == "function":
                parent, _, member = name.rpartition(".")
                self._api_modules.setdefault(parent, set())
                if (members := self._api_modules[parent]) is not None:
                    members.add(member)
            else:  # automodule: no :members: documents none, an empty one all, a list those named
                options = {}
                for option in lines[k + 1 :]:
                    if not (opt := _AUTODOC_OPTION.match(option)):
                        break
                    options[opt["key"]] = {n.strip() for n in opt["value"].split(",") if n.strip()}
                if options.get("members", {"-"}) == set() or options.get("private-members", {"-"}) == set():
                    self._api_modules[name] = None
                else:
                    self._api_modules[name] = options.get("members", set()) | options.get("private-members", set())

    def _add(self, label: str, target: Target) -> None:
        if label in self.targets and self.targets[label] != target:
            raise ValueError(f"the label {label!r} is defined twice: in {self.targets[label].page} and {target.page}")
        self.targets[label] = target


def plain_title(title: str) -> str:
    """A heading's text without inline markup (roles, code, emphasis), as a reference shows it."""
    return _INLINE_MARKUP.sub(lambda m: next(g for g in m.groups() if g is not None), title).strip()


class _Counters:
    """One running number per kind of numbered block, shown after ``prefix`` (``"2."`` in chapter 2)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counts = {"equation": 0, "exercise": 0, "figure": 0}

    def next(self, kind: str) -> str:
        self.counts[kind] += 1
        return f"{self.prefix}{self.counts[kind]}"


def _docname(path: str) -> str:
    return str(Path(path).with_suffix("")) if Path(path).suffix in (".md", ".ipynb") else path


def _chapter_numbers(toc: dict) -> dict[str, int]:
    """The chapter number of every page that is a chapter of a ``numbered: true`` part, counted on across parts."""
    numbers: dict[str, int] = {}
    for part in toc.get("parts", []):
        if part.get("numbered"):
            for chapter in part.get("chapters", []):
                if "file" in chapter:
                    numbers[_docname(chapter["file"])] = len(numbers) + 1
    return numbers


def _toc_pages(toc: dict) -> list[str]:
    """The docnames of ``_toc.yml`` (format jb-book) in reading order."""
    pages = [toc["root"]]

    def visit(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            visit(entry.get("sections", []) + entry.get("chapters", []))

    visit(toc.get("parts", []) + toc.get("chapters", []))
    return [_docname(p) for p in pages]


def _without_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[end + 4 :].lstrip("\n")
    return text
