"""Citations written out as the site writes them (sphinxcontrib-bibtex's author-year style), as Markdown links.

``{cite:p}`kingma2015adam``` becomes ``&#91;[Kingma and Ba, 2015](…references.html#cite-kingma2015adam)&#93;`` and
``{cite:t}`liu2020radam``` becomes ``Liu *et al.* &#91;[2020](…)&#93;``: the same words as on the site, because the
same style object formats them; only the output is Markdown instead of docutils nodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pybtex.database import BibliographyData, parse_file
from pybtex.richtext import BaseMultipartText, String, Tag
from sphinxcontrib.bibtex.style.referencing import format_references
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.template import SphinxReferenceInfo, SphinxReferenceText

__all__ = ["Citations", "escape_markdown"]

_ENTITIES = {"[": "&#91;", "]": "&#93;", "\\": "&#92;", "<": "&lt;", ">": "&gt;"}
_TAGS = {"em": "*", "i": "*", "b": "**", "strong": "**"}


class Citations:
    """Formats ``{cite:…}`` roles of the bibliography files; ``url(key)`` gives each entry's address on the site."""

    def __init__(self, bib_files: list[Path], url: Callable[[str], str]) -> None:
        self.entries = BibliographyData()
        for path in bib_files:
            for key, entry in parse_file(str(path)).entries.items():
                self.entries.add_entry(key, entry)
        self.url = url
        self.style = AuthorYearReferenceStyle()

    def role(self, role: str, content: str) -> str:
        """Markdown for the role ``{cite:<role>}`content```, e.g. ``role("p", "a,b")``."""
        role = {"cite": "p"}.get(role, role.removeprefix("cite:"))
        if role not in set(self.style.role_names()):
            raise ValueError(f"the citation role {{cite:{role}}} is not one the author-year style knows")
        references = []
        for key in (k.strip() for k in content.split(",")):
            if key not in self.entries.entries:
                raise KeyError(f"the citation key {key!r} is in no bibliography file")
            info = SphinxReferenceInfo(
                builder=None, fromdocname="", todocname="", citation_id=key, title=None, pre_text="", post_text=""
            )
            references.append((self.entries.entries[key], None, info))
        return _markdown(format_references(self.style, role, references), self.url)


def escape_markdown(text: str) -> str:
    """Text that Markdown shows as it is. Brackets and backslashes become HTML entities rather than backslash
    escapes: in a notebook, ``\\[`` would open a display equation before Markdown sees it."""
    return re.sub(r"([`*_|])", r"\\\1", re.sub(r"[\\[\]<>]", lambda m: _ENTITIES[m[0]], text))


def _markdown(text, url: Callable[[str], str]) -> str:
    """Markdown for pybtex rich text: emphasis as ``*…*``, each reference as a link to its bibliography entry."""
    if isinstance(text, str):
        return escape_markdown(text)
    if isinstance(text, String):
        return _markdown(text.value, url)
    inner = "".join(_markdown(part, url) for part in getattr(text, "parts", []))
    if isinstance(text, SphinxReferenceText):
        return f"[{inner}]({url(text.info[0].citation_id)})"
    if isinstance(text, Tag):
        mark = _TAGS.get(text.name, "")
        return f"{mark}{inner}{mark}"
    if isinstance(text, BaseMultipartText):
        return inner
    raise TypeError(f"no Markdown form for the rich-text element {type(text).__name__}")
