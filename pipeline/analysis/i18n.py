"""The one translation table (`data/translations.json`): every label, flag, category, outcome,
trend, role, fact kind and evidence phrase a handler sees, in each supported language.

Keys are `<group>.<id>` ("flag.regulator_threat", "label.title"); `{name}` placeholders are
filled by `text()`. The briefing, the web app and the QA views all read this table, so a
briefing is in one language from end to end.
"""
from __future__ import annotations

from functools import lru_cache

from pipeline.config.datafiles import read_json

LANGUAGES = ("zh", "en")
FALLBACK = "en"


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, str]]:
    return {k: v for k, v in read_json("translations.json").items() if not k.startswith("_")}


def language_of(language: str | None) -> str:
    """A supported language for `language` (a call's detected language), else the fallback."""
    return language if language in LANGUAGES else FALLBACK


def text(key: str, language: str | None, **values) -> str:
    """The entry `key` in `language`, placeholders filled; KeyError names a missing key."""
    try:
        entry = table()[key]
    except KeyError:
        raise KeyError(f"no translation for {key!r} in data/translations.json") from None
    phrase = entry[language_of(language)]
    return phrase.format(**values) if values else phrase


def name(group: str, code: str | None, language: str | None) -> str:
    """The display name of a code (a flag, category, trend...): unknown codes stay as they are."""
    if code is None:
        return text("label.none", language)
    key = f"{group}.{code}"
    return text(key, language) if key in table() else code


def phrases(language: str) -> set[str]:
    """Every fixed phrase of one language, placeholders cut out (to check a text is in one language)."""
    out = set()
    for entry in table().values():
        for piece in entry[language].replace("}", "{").split("{")[::2]:
            if piece.strip():
                out.add(piece.strip())
    return out


def mmss(seconds: float | None) -> str:
    """A time in a call as minutes:seconds (195.4 -> "03:15"); "—" when unknown."""
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 60:02d}:{s % 60:02d}"
