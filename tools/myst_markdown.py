"""One page's MyST Markdown rewritten as the plain Markdown (CommonMark, GFM tables, HTML, $-math) Colab renders.

What the site shows, the reader of a Colab edition gets in a form Colab understands:

=========================================  ==========================================================================
MyST                                       plain Markdown
=========================================  ==========================================================================
``{glue:}`key``` / ``{glue:text}`key:.3f```  the glued value, as the site prints it
``{cite:p}`key``` / ``{cite:t}`key```      the author-year text, linked to the bibliography entry on the site
``{eq}`` ``{ref}`` ``{numref}`` ``{doc}``  links to the site: ``[(3)](site#equation-…)``, ``[Exercise 4](site#…)``
``{func}`` ``{class}`` ``{mod}`` …          the name in code, linked to the API reference when it documents it
``$$ … $$ (label)``, ``{math}``             ``$$ … \\tag{3} $$``, the site's number; config macros expanded
``{exercise}``                             a ``### Exercise 4`` section
``{solution}``                             ``<details><summary>Solution to Exercise 4</summary> … </details>``
admonitions                                a quote headed by its title, or ``<details>`` for ``:class: dropdown``
``{figure}`` / ``{image}``                 ``![alt](raw file at the commit)`` and its caption
``(label)=``, ``% comment``, ``+++``        dropped
=========================================  ==========================================================================

A directive or role with no plain form is an error naming it, never a silent leftover.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from myst_nb.core.variables import format_plain_text

from tools.book_index import BookIndex
from tools.citations import Citations, escape_markdown
from tools.myst_blocks import EQUATION_LABEL, TARGET_LINE, Block, split_blocks

__all__ = ["EditionError", "PageConverter", "SiteLink"]

ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:.+-]*)\}`(?P<content>[^`]*)`")
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_LINK = re.compile(r"(?P<text>\[[^\]]*\])\((?P<target>[^()\s]+)\)")
_DROPPED_LINE = re.compile(r"^(?:%.*|\+\+\+.*)\n?", re.M)
_AMSMATH = re.compile(
    r"(?:^|\n\n)(?P<env>\\begin\{(?P<name>equation|multline|gather|align|alignat|flalign|eqnarray)\*?\}.*?"
    r"\\end\{(?P=name)\*?\})(?=\n\n|$)",
    re.S,
)
_PY_ROLES = {
    "func",
    "meth",
    "class",
    "mod",
    "attr",
    "data",
    "exc",
    "obj",
    "const",
    "py:func",
    "py:meth",
    "py:class",
    "py:mod",
    "py:attr",
    "py:data",
    "py:exc",
    "py:obj",
    "py:const",
}
_ADMONITIONS = {
    "note",
    "warning",
    "tip",
    "important",
    "caution",
    "attention",
    "danger",
    "error",
    "hint",
    "seealso",
    "admonition",
    "dropdown",
    "margin",
    "sidebar",
    "topic",
    "epigraph",
}


class EditionError(ValueError):
    """Something in a page has no plain-Markdown form (or refers to nothing): the message names it and where."""


@dataclass(frozen=True)
class SiteLink:
    """A link an edition makes into the site, with what the site must show there (``kind``, ``text``)."""

    url: str
    kind: str = ""
    text: str = ""


@dataclass
class PageConverter:
    """Converts the Markdown of one page (``page``, a docname) of the book indexed by ``index``.

    ``glue`` maps glue keys to their outputs' mime bundles (``{"text/plain": "0.031"}``); ``raw_url`` turns a path in
    the repository into an address an image can be loaded from. Every link into the site is recorded in ``links``.
    """

    index: BookIndex
    page: str
    glue: dict[str, dict[str, Any]]
    raw_url: Callable[[str], str]
    citations: Citations
    links: list[SiteLink] = field(default_factory=list)
    _exercise: int = 0
    _figure: int = 0

    def convert(self, source: str) -> str:
        """Plain Markdown for a piece of this page's MyST source (a cell, or a directive's body)."""
        parts = []
        for block in split_blocks(source):
            if block.kind == "code":
                parts.append(block.text)
            elif block.kind == "text":
                parts.append(self._text(block.text))
            else:
                parts.append(self._directive(block))
        return "\n".join(parts)

    # --- text: targets, math, roles, links ---------------------------------------------------------------------
    def _text(self, text: str) -> str:
        text = TARGET_LINE.sub("", text)
        text = _DROPPED_LINE.sub("", text)
        text = EQUATION_LABEL.sub(lambda m: f"{self._tag(m['label'])}\n$$", text)
        text = _AMSMATH.sub(lambda m: m[0].replace(m["env"], f"$$\n{m['env']}\n$$"), text)
        text = self._macros(text)
        text = ROLE.sub(lambda m: self._role(m["name"], m["content"]), text)
        return _LINK.sub(self._link, text)

    def _tag(self, label: str) -> str:
        target = self.index.targets[label]
        return f"\\tag{{{target.text.strip('()')}}}"

    def _macros(self, text: str) -> str:
        macros = self.index.config.get("sphinx", {}).get("config", {}).get("mathjax3_config", {})
        for name, definition in macros.get("tex", {}).get("macros", {}).items():
            if not isinstance(definition, str):
                raise EditionError(f"the MathJax macro \\{name} takes arguments; expand it by hand")
            text = re.sub(rf"\\{name}(?![A-Za-z])", lambda _, value=definition: value, text)
        return text

    def _link(self, match: re.Match) -> str:
        target, text = match["target"], match["text"]
        if target.startswith("#") and target[1:] in self.index.targets:
            return self._reference(target[1:], text[1:-1] or None)
        if "://" not in target and re.search(r"\.(ipynb|md)(#|$)", target):
            path, _, anchor = target.partition("#")
            page = self.index.resolve_document(path, self.page)
            url = self.index.page_url(page) + (f"#{anchor}" if anchor else "")
            self.links.append(SiteLink(url))
            return f"{text if text != '[]' else '[' + self.index.titles[page] + ']'}({url})"
        return match[0]

    # --- roles -------------------------------------------------------------------------------------------------
    def _role(self, name: str, content: str) -> str:
        if name in ("glue", "glue:", "glue:any", "glue:text"):
            return self._glue(name, content)
        if name == "cite" or name.startswith("cite:"):
            try:
                return self.citations.role(name, content)
            except (KeyError, ValueError) as error:
                raise EditionError(f"{error}") from None
        title, target = _title_and_target(content)
        if name in ("eq", "ref", "numref", "std:ref", "std:numref"):
            return self._reference(target, title, numref=name.endswith("numref"))
        if name == "doc":
            page = self._resolve_document(target)
            url = self.index.page_url(page)
            self.links.append(SiteLink(url))
            return f"[{title or self.index.titles[page]}]({url})"
        if name in _PY_ROLES:
            return self._python_object(name.removeprefix("py:"), target, title)
        if name in ("math",):
            return f"${content}$"
        if name in ("code", "samp", "file", "command", "kbd", "literal"):
            return f"`{content}`"
        if name in ("sub", "sup"):
            return f"<{name}>{content}</{name}>"
        raise EditionError(f"the role {{{name}}} has no plain-Markdown form")

    def _glue(self, name: str, content: str) -> str:
        key, spec = content, "s"  # {glue:text} without a format prints str(value), as myst-nb does
        if name == "glue:text" and ":" in content:
            key, spec = content.rsplit(":", 1)
        if "::" in key:
            raise EditionError(f"glue from another page ({key}) is not supported by the editions")
        if key not in self.glue:
            raise EditionError(f"no cell output glues {key!r}; run `make notebooks`")
        data = self.glue[key]
        if name == "glue:text" or list(data) == ["text/plain"]:
            if "text/plain" not in data:
                raise EditionError(f"the glued {key!r} has no text/plain form")
            text = format_plain_text(data["text/plain"], spec) if name == "glue:text" else data["text/plain"]
            return escape_markdown(text)
        if "text/markdown" in data:
            return data["text/markdown"]
        raise EditionError(f"the glued {key!r} is {sorted(data)}; only text or Markdown can be pasted")

    def _reference(self, label: str, title: str | None, numref: bool = False) -> str:
        if label not in self.index.targets:
            raise EditionError(f"a reference to {label!r}, which no page of the book defines")
        target = self.index.targets[label]
        url = self.index.url(target)
        self.links.append(SiteLink(url, target.kind, target.text))
        text = target.text
        if title:
            number = target.text.split()[-1].strip("()")
            text = title.replace("%s", number).replace("{number}", number).replace("{name}", target.text)
        elif numref and target.kind == "section":
            raise EditionError(f"{{numref}} to the unnumbered section {label!r}")
        return f"[{text}]({url})"

    def _resolve_document(self, reference: str) -> str:
        try:
            return self.index.resolve_document(reference, self.page)
        except KeyError as error:
            raise EditionError(f"{error.args[0]}") from None

    def _python_object(self, role: str, target: str, title: str | None) -> str:
        name = target.lstrip("~.")
        shown = title or (name.rsplit(".", 1)[-1] if target.startswith("~") else name)
        if role in ("func", "meth") and not title:
            shown += "()"
        url = self.index.api_url(role, name)
        if url is None:
            return f"`{shown}`"
        self.links.append(SiteLink(url, "api", ""))
        return f"[`{shown}`]({url})"

    # --- directives --------------------------------------------------------------------------------------------
    def _directive(self, block: Block) -> str:
        name = block.name
        if name == "exercise":
            return self._exercise_section(block)
        if name == "solution":
            return self._solution(block)
        if name in _ADMONITIONS:
            return self._admonition(block)
        if name in ("figure", "image"):
            return self._figure(block)
        if name == "math":
            label = block.options.get("label", "")
            tag = f"\n{self._tag(label)}" if label else ""
            return f"$$\n{self._macros(block.body)}{tag}\n$$"
        if name in ("code", "code-block", "sourcecode"):
            return f"```{block.argument}\n{block.body}\n```"
        if name == "raw" and block.argument == "html":
            return block.body
        if name == "glue:md" or name == "glue:math":
            data = self.glue.get(block.argument, {})
            if name == "glue:md" and "text/markdown" in data:
                return data["text/markdown"]
            if name == "glue:math" and "text/latex" in data:
                return "$$\n" + data["text/latex"].strip().strip("$") + "\n$$"
            raise EditionError(f"{{{name}}} {block.argument}: no matching glued output")
        if name == "bibliography":
            url = self.index.page_url(self.page)
            self.links.append(SiteLink(url))
            return f"The bibliography is on the [book's website]({url})."
        if name == "tableofcontents":
            return "\n".join(self._page_item(p) for p in self.index.chapters())
        raise EditionError(f"the directive {{{name}}} has no plain-Markdown form")

    def _page_item(self, page: str) -> str:
        url = self.index.page_url(page)
        self.links.append(SiteLink(url))
        return f"* [{self.index.titles[page]}]({url})"

    def _exercise_section(self, block: Block) -> str:
        numbers = self.index.numbers[self.page].exercises
        if "nonumber" in block.options:
            heading = "Exercise"
        else:
            heading = f"Exercise {numbers[self._exercise]}"
            self._exercise += 1
        if block.argument:
            heading += f" ({self._text(block.argument)})"
        return f"### {heading}\n\n{self.convert(block.body)}\n"

    def _solution(self, block: Block) -> str:
        label = block.argument
        if label not in self.index.targets or self.index.targets[label].kind != "exercise":
            raise EditionError(f"a solution to {label!r}, which is not an exercise")
        return _details(f"Solution to {self.index.targets[label].text}", self.convert(block.body))

    def _admonition(self, block: Block) -> str:
        classes = block.options.get("class", "").split()
        title = block.argument if block.name in ("admonition", "dropdown", "topic", "sidebar") else ""
        title = self._text(title) if title else block.name.capitalize().replace("Seealso", "See also")
        body = self.convert(block.body)
        if block.name == "dropdown" or "dropdown" in classes or "toggle" in classes:
            return _details(f"<b>{title}</b>" if block.name != "dropdown" else title, body)
        return "\n".join(f"> {line}".rstrip() for line in [f"**{title}**", "", *body.split("\n")])

    def _figure(self, block: Block) -> str:
        alt = block.options.get("alt", "")
        image = f"![{alt}]({self.raw_url(block.argument)})"
        if block.name == "image" or not block.body.strip():
            return image
        number = self.index.numbers[self.page].figures[self._figure]
        self._figure += 1
        return f"{image}\n\n*Figure {number}: {self.convert(block.body).strip()}*"


def _title_and_target(content: str) -> tuple[str | None, str]:
    match = _EXPLICIT_TITLE.match(content)
    if match:
        return match["title"].strip() or None, match["target"].strip()
    return None, content.strip()


def _details(summary: str, body: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{body.strip()}\n\n</details>\n"
