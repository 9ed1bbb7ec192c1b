"""Rules and lexicons kept as data in pipeline/data/ (banks extend these files, not the code)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


def read_text(name: str) -> str:
    return resources.files("pipeline").joinpath(f"data/{name}").read_text(encoding="utf-8")


def read_rows(name: str) -> list[list[str]]:
    """Tab-separated rows, skipping blank lines and # comments."""
    return parse_rows(read_text(name))


def parse_rows(text: str) -> list[list[str]]:
    """Tab-separated rows of a data file's text (a packaged file's, or a bank's own copy's)."""
    return [line.rstrip("\n").split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def read_json(name: str) -> dict:
    return json.loads(read_text(name))


@dataclass(frozen=True)
class Term:
    """A domain term of a vocabulary file (category<TAB>term per row)."""
    text: str
    category: str


def parse_vocabulary(text: str) -> tuple[Term, ...]:
    """The terms of a vocabulary file's text, each once; a row without a term raises ValueError."""
    terms, seen = [], set()
    for row in parse_rows(text):
        if len(row) < 2 or not row[1].strip():
            raise ValueError(f"vocabulary: expected 'category<TAB>term', got {row!r}")
        term = row[1].strip()
        if term not in seen:
            seen.add(term)
            terms.append(Term(term, row[0].strip()))
    return tuple(terms)
