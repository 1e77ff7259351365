"""MyST Markdown cut into blocks: plain text, fenced code, and directives (with their options and body).

A directive is a fence whose info string is ``{name} argument``, made of backticks or colons (``colon_fence``)::

    :::{exercise} Optional title
    :label: ex-name
    body
    :::

The fence rules are CommonMark's: a fence closes at the first line holding only the same character, at least as many
times as it opened. That is all the Colab editions and the book index need to know about block structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

__all__ = ["Block", "split_blocks", "EQUATION_LABEL", "TARGET_LINE"]

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[A-Za-z][\w:.+-]*)\}\s*(?P<argument>.*)$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):(?:\s+(?P<value>.*))?$")

#: ``$$ ... $$ (label)``: the closing line of a labelled display equation (MyST's dollarmath)
EQUATION_LABEL = re.compile(r"\$\$[ \t]*\((?P<label>[^()\s]+)\)[ \t]*$", re.M)
#: ``(label)=`` on a line of its own: a target for the block that follows
TARGET_LINE = re.compile(r"^\((?P<label>[^()\s]+)\)=[ \t]*$", re.M)


@dataclass
class Block:
    """One block of a MyST document: ``kind`` is ``"text"``, ``"code"`` (a fence that is not a directive) or
    ``"directive"``. ``text`` is the block's source as written (fences included)."""

    kind: str
    text: str
    name: str = ""
    argument: str = ""
    options: dict[str, str] = field(default_factory=dict)
    body: str = ""


def split_blocks(source: str) -> list[Block]:
    """Cut MyST source into text, code and directive blocks, in order; text between fences stays as written."""
    lines = source.split("\n")
    blocks: list[Block] = []
    text: list[str] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None or (match["fence"][0] == "`" and "`" in match["info"]):
            text.append(lines[i])
            i += 1
            continue
        fence = match["fence"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if text:
            blocks.append(Block("text", "\n".join(text)))
            text = []
        whole = "\n".join(lines[i : end + 1])
        body = lines[i + 1 : end]
        directive = _DIRECTIVE_INFO.match(match["info"].strip())
        if directive is None:
            blocks.append(Block("code", whole))
        else:
            options, body = _options(body)
            blocks.append(
                Block("directive", whole, directive["name"], directive["argument"].strip(), options, "\n".join(body))
            )
        i = end + 1
    if text:
        blocks.append(Block("text", "\n".join(text)))
    return blocks


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's options (``:key: value`` lines or a ``---`` YAML block at the top) and the rest of its body."""
    if body and body[0].strip() == "---":
        try:
            end = next(k for k in range(1, len(body)) if body[k].strip() == "---")
        except StopIteration:
            raise ValueError("a directive's option block opened with --- is never closed") from None
        options = yaml.safe_load("\n".join(body[1:end])) or {}
        return {str(k): "" if v is None else str(v) for k, v in options.items()}, _strip_blank(body[end + 1 :])
    options = {}
    k = 0
    while k < len(body) and (option := _OPTION.match(body[k].strip() if body[k].startswith(":") else "")):
        options[option["key"]] = (option["value"] or "").strip()
        k += 1
    return options, _strip_blank(body[k:])


def _strip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines
