"""Author-year labels in the bibliography, the same as the citations in the text ("Kingma and Ba, 2015").

sphinxcontrib-bibtex cites by author and year in the text, but labels the bibliography with pybtex's alpha style
("[KB15]"), which also mangles names with accents. This Sphinx extension registers

* a pybtex label style whose label is the citation itself, ``Kingma and Ba, 2015``, with ``a``, ``b``, ... after
  the year when one author list has several works in a year (``Liu et al., 2020a``);
* a pybtex formatting style ``author_year`` that uses it and sorts by author, year and title;
* a reference style ``author_year_label`` that writes the year in the text as the label has it (``2020a``).

``_config.yml`` selects them with ``bibtex_default_style: author_year`` and
``bibtex_reference_style: author_year_label``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import pybtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import join, node
from sphinxcontrib.bibtex.plugin import register_plugin as register_reference_style
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_author import ExtraAuthorReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_empty import ExtraEmptyReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_label import ExtraLabelReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
from sphinxcontrib.bibtex.style.template import join2, post_text, pre_text, reference

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _last_name(person: Any) -> str:
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


def author_label(entry: Any) -> str:
    """``Kish``, ``Kingma and Ba`` or ``Liu et al.``: the authors as the text cites them (editors if none)."""
    persons = list(entry.persons.get("author") or entry.persons.get("editor") or [])
    names = [_last_name(person) for person in persons]
    if not names:
        return Text.from_latex(entry.fields.get("title", entry.key)).render_as("text")
    if len(names) > 2 or names[-1] == "others":
        return f"{names[0]} et al."
    return " and ".join(names)


def author_year_labels(entries: Iterable[Any]) -> Iterator[str]:
    """The labels of ``entries`` (in bibliography order): ``author_label, year``, lettered where they collide."""
    entries = list(entries)
    bases = [f"{author_label(entry)}, {entry.fields.get('year', 'n.d.')}" for entry in entries]
    counts, used = Counter(bases), Counter()
    for base in bases:
        if counts[base] == 1:
            yield base
        else:
            yield base + LETTERS[used[base]]
            used[base] += 1


class AuthorYearLabelStyle(BaseLabelStyle):
    """pybtex label style: the author-year citation as the label."""

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        return author_year_labels(sorted_entries)


class AuthorYearStyle(UnsrtStyle):
    """pybtex formatting style: unsrt's entries, author-year labels, sorted by author, year and title."""

    default_label_style = "author_year"
    default_sorting_style = "author_year_title"


@node
def label_year(children: list, data: dict) -> Text:
    """The year as the bibliography label has it, with its letter (``2020a``)."""
    assert not children
    return Text(data["formatted_entry"].label.rsplit(", ", 1)[-1])


@dataclass
class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name: str) -> Any:
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            reference[
                join(sep=self.author_year_sep)[
                    self.person.author_or_editor_or_title(full="s" in role_name), label_year
                ]
            ],
            post_text,
        ]


@dataclass
class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name: str) -> Any:
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[
                self.bracket.left,
                join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[pre_text, reference[label_year], post_text],
                self.bracket.right,
            ],
        ]


@dataclass
class AuthorYearLabelReferenceStyle(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's author-year citations, with the year (and its letter) taken from the label."""

    def __post_init__(self) -> None:
        self.styles.extend(
            [
                _Parenthetical(
                    bracket=self.bracket_parenthetical,
                    person=self.person,
                    author_year_sep=self.author_year_sep,
                    pre_text_sep=self.pre_text_sep,
                    post_text_sep=self.post_text_sep,
                ),
                _Textual(
                    bracket=self.bracket_textual,
                    person=self.person,
                    text_reference_sep=self.text_reference_sep,
                    pre_text_sep=self.pre_text_sep,
                    post_text_sep=self.post_text_sep,
                ),
                ExtraAuthorReferenceStyle(bracket=self.bracket_author, person=self.person),
                ExtraLabelReferenceStyle(bracket=self.bracket_label),
                ExtraYearReferenceStyle(bracket=self.bracket_year),
                ExtraEmptyReferenceStyle(),
            ]
        )
        super(AuthorYearReferenceStyle, self).__post_init__()


def setup(app: Any) -> dict:
    pybtex.plugin.register_plugin("pybtex.style.labels", "author_year", AuthorYearLabelStyle, force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle, force=True)
    register_reference_style(
        "sphinxcontrib.bibtex.style.referencing", "author_year_label", AuthorYearLabelReferenceStyle, force=True
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
