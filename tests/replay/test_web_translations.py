"""The web app speaks one language per person from one translation table
(pipeline/data/translations.json): every entry in both languages, every key the templates and
routes use present, every code the pages name (flags, categories, outcomes, scorecard items...)
named, and no word of either language written into a template."""
from __future__ import annotations

import json
import re
import string
from pathlib import Path

from pipeline.analysis.i18n import LANGUAGES, table

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "web" / "templates"
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def fields(phrase: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(phrase) if f}


def test_every_entry_is_in_every_language_with_the_same_placeholders():
    for key, entry in table().items():
        assert set(entry) == set(LANGUAGES) and all(entry[lang].strip() for lang in LANGUAGES), key
        if not key.startswith("error."):  # an English error may add detail for the API (zh leaves it out)
            assert fields(entry["zh"]) == fields(entry["en"]), key
        assert fields(entry["zh"]) <= fields(entry["en"]), key
    assert not HAN.search("".join(e["en"] for k, e in table().items() if not k.startswith("lang."))), \
        "a Chinese character in an English entry"


def test_every_key_the_templates_and_routes_use_exists():
    used = set()
    for path in list(TEMPLATES.glob("*.html")) + list((ROOT / "web").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bt\(\s*['"]([a-z_]+\.[\w./ -]+)['"]""", source))
        used |= set(re.findall(r"""\btext\(\s*['"]([a-z_]+\.[\w./ -]+)['"]""", source))
        used |= set(re.findall(r"""Refused\(\d+, ['"](\w+)['"]""", source) and
                    [f"error.{k}" for k in re.findall(r"""Refused\(\d+, ['"](\w+)['"]""", source)])
    assert len(used) > 100
    missing = sorted(k for k in used if k not in table() and not k.endswith(("_", ".")))  # a prefix: see below
    assert not missing, missing


def test_every_code_a_page_names_has_a_name():
    from pipeline.config.datafiles import read_json
    from pipeline.outputs.qa import scorecard_items
    from pipeline.records import Flag, Trend
    from pipeline.store import CALLBACK_OUTCOMES
    from web.app import create_app  # noqa: F401  (the routes below are the app's)
    from web.routes import api

    codes = {"flag": [f.value for f in Flag], "trend": [t.value for t in Trend], "callback": CALLBACK_OUTCOMES,
             "category": [c["id"] for c in read_json("categories.json")["categories"]],
             "qa_item": [i["id"] for i in scorecard_items()], "qa_value": read_json("qa_scorecard.json")["values"],
             "outcome": ["resolved", "pending", "escalated"], "role": ["agent", "customer", "unknown"],
             "user_role": ["handler", "qa", "lead", "admin"], "correction": ["homophone", "hotline", "rescored"],
             "stratum": ["flagged", "agent_quota", "high_escalation", "random"], "group": ["day", "category", "agent"],
             "lang": LANGUAGES, "api": [r.name for r in api.router.routes if r.include_in_schema],
             "api_tag": sorted({tag for r in api.router.routes for tag in (r.tags or [])}),
             "flash": ["callback_recorded", "review_saved", "settings_saved"]}
    missing = [f"{group}.{code}" for group, found in codes.items() for code in found if f"{group}.{code}" not in table()]
    assert not missing, missing


def test_no_template_writes_words_of_its_own():
    """Labels come from t() and name(): a template holds no Chinese, and no English sentence
    outside its tags (a few symbols and identifiers aside)."""
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text(encoding="utf-8")
        assert not HAN.search(source), path.name
        text = re.sub(r"<code>.*?</code>|\{\{.*?\}\}|\{%.*?%\}|<[^>]*>", " ", source, flags=re.S)
        words = [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in {"callbrief", "ms"}]
        assert not words, (path.name, words)


def test_the_second_table_is_gone():
    assert not (ROOT / "web" / "data" / "labels.json").exists() and not (ROOT / "web" / "labels.py").exists()
    assert json.loads((ROOT / "pipeline" / "data" / "translations.json").read_text(encoding="utf-8"))["_doc"]

