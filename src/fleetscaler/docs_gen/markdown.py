"""Small Markdown writers shared by the generated pages."""

from __future__ import annotations

import re
from collections.abc import Sequence

GENERATOR = "python -m fleetscaler.docs_gen --write"


def header(title: str, source: str) -> list[str]:
    """The first lines of every generated page: what it is generated from, and how to regenerate it."""
    return [
        f"<!-- Generated from {source} by `{GENERATOR}` (`make docs-generate`). Do not edit by hand. -->",
        "",
        f"# {title}",
        "",
        f"*This page is generated from {source}; run `make docs-generate` after changing it.*",
        "",
    ]


_CODE_SPAN = re.compile(r"(`[^`]*`)")


def cell(text: object) -> str:
    """A table cell: one line; outside code spans `|` and `<` are escaped so the table and the page stay whole."""
    flat = " ".join(str(text).split())
    if not flat:
        return "-"
    parts = _CODE_SPAN.split(flat)
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = parts[i].replace("|", "\\|").replace("<", "&lt;")
    return "".join(parts)


def code(text: object) -> str:
    """An inline code span that holds any text (backticks inside get a longer fence)."""
    value = str(text)
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def table(headings: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def prose(text: str) -> list[str]:
    """Help text as Markdown paragraphs; click's `\\b` (keep as is) paragraphs become a text block."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        body = paragraph.strip("\n")
        if body.lstrip().startswith("\b"):
            kept = [line for line in body.splitlines() if line.strip() != "\b"]
            lines += ["```text", *[line.rstrip() for line in _dedent(kept)], "```", ""]
        else:
            lines += [" ".join(body.split()), ""]
    return lines


def _dedent(lines: list[str]) -> list[str]:
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return [line[cut:] for line in lines]
