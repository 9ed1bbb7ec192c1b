"""Readable names for codes (flags, roles, outcomes), from web/data/labels.json."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pipeline.analysis.i18n import table


@lru_cache(maxsize=1)
def _labels() -> dict:
    return json.loads((Path(__file__).parent / "data" / "labels.json").read_text(encoding="utf-8"))


def label(kind: str, code: str | None) -> str:
    """'regulator_threat' -> 'Regulator threat 监管投诉威胁'."""
    if code is None:
        return "—"
    names = _labels().get(kind, {}).get(code)
    if names is None and f"{kind}.{code}" in table():  # labels moving to the one translation table
        entry = table()[f"{kind}.{code}"]
        names = entry["en"], entry["zh"]
    return f"{names[0]} · {names[1]}" if names else code.replace("_", " ")
