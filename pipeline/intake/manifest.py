"""Read a manifest (CSV, or JSON) row by row: each row becomes metadata or a `Rejection`, never an exception.

A bad row is reported (manifest, line, field, reason) and skipped; every field of it is checked so
one report names all that is wrong. Rows that are fine are used. Checks across rows (duplicate
call ids, two rows naming one file) and the path checks are done by `ingest.discover`.
"""
from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from pipeline.config.datafiles import read_rows
from pipeline.intake.identity import call_id_problem
from pipeline.records import CallMetadata, ComplaintSource, Direction

MANIFEST_NAMES = ("manifest.csv", "manifest.json")
FILE_COLUMNS = ("file", "path", "filename")
TIME_COLUMNS = ("started_at", "start_time")
MAX_TEXT = 128  # customer, agent and case ids: longer is not an id
MAX_SPEAKERS = 8  # a phone call with more people than this is a data error
_AGENT_CHANNELS = {"0": 0, "1": 1, "left": 0, "right": 1}
_LAYOUTS = ("stereo", "mono")
ISO_EXAMPLE = "2026-11-20T09:30:00"
_SEPARATORS = re.compile(r"[\s,]*")


@dataclass(frozen=True)
class Rejection:
    """Something refused at the door: a manifest row or field, a path, a whole manifest."""

    source: str  # the manifest or recording, as a path relative to the input folder where it is inside
    line: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = self.source + (f" line {self.line}" if self.line is not None else "")
        return f"{where}, {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


@dataclass(frozen=True)
class ManifestRow:
    file: str  # as written (backslashes turned to '/'), relative to the input folder
    metadata: CallMetadata  # call_id is "" when the row gives none: discovery derives one
    line: int | None = None


class _Bad(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field


# --- fields ---------------------------------------------------------------------------------

def _text(row: dict, name: str, limit: int = MAX_TEXT) -> str | None:
    """A text field; JSON integers become strings (an id of 1001 is '1001')."""
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(name, f"{value!r} is not text or a whole number")
    value = str(value).strip()
    if not value:
        return None
    if len(value) > limit:
        raise _Bad(name, f"{value[:20]!r}... is longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise _Bad(name, f"{value!r} holds control characters")
    return value


def _call_id(row: dict) -> str:
    value = _text(row, "call_id", limit=1000)
    if value is None:
        return ""
    problem = call_id_problem(value)
    if problem:
        raise _Bad("call_id", problem)
    return value


def _file(row: dict) -> str:
    name = next((c for c in FILE_COLUMNS if c in row), None)
    if name is None:
        raise _Bad("file", "the manifest has no 'file' column: the row cannot be matched to a recording")
    value = _text(row, name, limit=1000)
    if value is None:
        raise _Bad(name, "empty: the row cannot be matched to a recording")
    value = value.replace("\\", "/")  # a manifest written on Windows
    if value.startswith("/") or re.match(r"[A-Za-z]:/", value):
        raise _Bad(name, f"{value!r} is an absolute path: name the file relative to the input folder")
    return value


# Year first is never read day-first anywhere, so 2026/11/20 and 2026年11月20日 are safe to accept.
_YEAR_FIRST = re.compile(r"(\d{4})\s*[/.年]\s*(\d{1,2})\s*[/.月]\s*(\d{1,2})\s*日?"
                         r"(?:[\sT]*(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}))?\s*[秒分]?)?")
_YEAR_LAST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(.*)")


def parse_time(value: str) -> datetime:
    """ISO 8601, or a year-first date (2026/11/20 09:30, 2026年11月20日 9:30). A date with the year last
    is refused: 05/11/2026 is 5 November in one centre and 11 May in another."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    if m := _YEAR_FIRST.fullmatch(value):
        y, mo, d, h, mi, s = (int(x) if x else 0 for x in m.groups())
        try:
            return datetime(y, mo, d, h, mi, s)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid time ({exc})") from None
    hint = f"; write it as ISO 8601, e.g. {ISO_EXAMPLE}"
    if (m := _YEAR_LAST.fullmatch(value)) and int(m[1]) > 12 >= int(m[2]):
        hint = f" (day and month order is not stated; if day first, write {m[3]}-{int(m[2]):02}-{int(m[1]):02}" \
               f"{'T' + m[4].strip() if m[4].strip() else ''})"
    raise ValueError(f"{value!r} is not an ISO 8601 time{hint}")


def _started_at(row: dict) -> datetime | None:
    name = next((c for c in TIME_COLUMNS if c in row), TIME_COLUMNS[0])
    value = _text(row, name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise _Bad(name, str(exc)) from None


def _channel_layout(row: dict) -> str | None:
    value = _text(row, "channel_layout")
    if value is None:
        return None
    if value.lower() not in _LAYOUTS:
        raise _Bad("channel_layout", f"{value!r} is not one of {', '.join(_LAYOUTS)}")
    return value.lower()


def _direction(row: dict) -> str | None:
    value = _text(row, "direction")
    if value is None:
        return None
    if value.lower() not in tuple(Direction):
        raise _Bad("direction", f"{value!r} is not one of {', '.join(Direction)} (leave it empty to detect it "
                                "from the call)")
    return value.lower()


def _complaint_source(row: dict) -> str | None:
    """Where the complaint came in (column `source`); empty means by phone, as a recording is."""
    value = _text(row, "source")
    if value is None:
        return None
    if value.lower() not in tuple(ComplaintSource):
        raise _Bad("source", f"{value!r} is not one of {', '.join(ComplaintSource)} (where the complaint came in; "
                             "leave it empty for a phone call)")
    return value.lower()


def _agent_channel(row: dict) -> int | None:
    value = _text(row, "agent_channel")
    if value is None:
        return None
    if value.lower() not in _AGENT_CHANNELS:
        raise _Bad("agent_channel", f"{value!r} is not one of 0, 1, left, right")
    return _AGENT_CHANNELS[value.lower()]


@lru_cache(maxsize=1)
def _languages() -> dict[str, str]:
    names = {name: code for name, code in read_rows("languages.tsv")}
    return names | {code: code for code in names.values()}


def _language(row: dict) -> str | None:
    value = _text(row, "language")
    if value is None:
        return None
    key = re.split(r"[-_]", value.lower())[0]  # zh-CN, zh_TW -> zh
    known = _languages()
    if key not in known:
        raise _Bad("language", f"{value!r} is not a language Whisper knows (use a code such as zh or en)")
    return known[key]


def parse_speakers(value: object) -> tuple[int, int]:
    """'2' -> (2, 2); '2-3' -> (2, 3); a JSON 2 -> (2, 2)."""
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)(?:\s*[-–~]\s*(\d+))?", text)
    if isinstance(value, bool) or not m:
        raise ValueError(f"{value!r} is not a number of speakers or a range like 2-3")
    low, high = int(m[1]), int(m[2] or m[1])
    if not 1 <= low <= high <= MAX_SPEAKERS:
        raise ValueError(f"{value!r} is not a range within 1-{MAX_SPEAKERS}")
    return low, high


def _speakers(row: dict) -> tuple[int, int] | None:
    value = _text(row, "speakers")
    if value is None:
        return None
    try:
        return parse_speakers(row["speakers"])
    except ValueError as exc:
        raise _Bad("speakers", str(exc)) from None


def parse_row(raw: dict) -> tuple[ManifestRow | None, list[tuple[str, str]], str | None]:
    """A row as metadata, or the (field, reason) of everything wrong with it; and the file it names, when
    that much is readable (so a refused row's recording can be held back). Unknown columns are ignored."""
    row = {k.strip().lower(): v for k, v in raw.items() if isinstance(k, str)}
    errors: list[tuple[str, str]] = []
    if isinstance(raw.get(None), list):  # csv.DictReader puts surplus cells under None
        errors.append(("", f"{len(raw[None])} more cells than the header has columns (an unquoted comma?)"))

    def check(parse):
        try:
            return parse(row)
        except _Bad as bad:
            errors.append((bad.field, str(bad)))
            return None

    file = check(_file)
    meta = dict(call_id=check(_call_id), customer_id=check(lambda r: _text(r, "customer_id")),
                agent_id=check(lambda r: _text(r, "agent_id")), case_id=check(lambda r: _text(r, "case_id")),
                started_at=check(_started_at), channel_layout=check(_channel_layout),
                agent_channel=check(_agent_channel), language=check(_language), speakers=check(_speakers),
                direction=check(_direction), complaint_source=check(_complaint_source))
    if errors:
        # The file a refused row names, even when that name is itself refused (an absolute path
        # into the folder), so discovery can hold the recording back; resolving it opens nothing.
        named = next((row[c] for c in FILE_COLUMNS if isinstance(row.get(c), str) and row[c].strip()), None)
        return None, errors, file or (named.strip().replace("\\", "/") if named else None)
    return ManifestRow(file=file, metadata=CallMetadata(**meta)), [], file


# --- files ----------------------------------------------------------------------------------

def _json_items(text: str) -> tuple[list, list[int | None]]:
    """The manifest's rows and the line each starts on: a list of objects, or {"calls": [...]}."""
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("calls"), list):
        items = data["calls"]
    elif isinstance(data, list):
        items = data
    else:
        kind = type(data).__name__ if not isinstance(data, dict) else 'an object without a "calls" list'
        raise ValueError(f'a JSON manifest must be a list of rows (or {{"calls": [...]}}), this is {kind}')
    return items, _json_item_lines(text, items)


def _json_item_lines(text: str, items: list) -> list[int | None]:
    """Line each row starts on, found by decoding the row list element by element (None where the
    scan does not follow the layout, e.g. "calls" first appearing inside a string)."""
    decoder = json.JSONDecoder()
    start = text.find("[", text.find('"calls"') if text.lstrip().startswith("{") else 0)
    lines, decoded, pos, line, counted = [], [], start + 1, 1, 0
    try:
        for _ in items:
            pos = _SEPARATORS.match(text, pos).end()
            line, counted = line + text.count("\n", counted, pos), pos
            lines.append(line)
            item, pos = decoder.raw_decode(text, pos)
            decoded.append(item)
    except ValueError:
        pass
    return lines if decoded == items else [None] * len(items)


@dataclass(frozen=True)
class Manifest:
    rows: list[ManifestRow]  # rows that passed
    rejected: list[Rejection]  # one per bad field of a bad row, or one for a manifest that cannot be read
    refused_files: list[tuple[str, int | None]]  # (file, line) named by refused rows


def read_manifest(path: Path, source: str | None = None) -> Manifest:
    """Every row checked on its own. `source` names the manifest in reports (default: its file name)."""
    source = source or path.name
    try:
        if path.suffix.lower() == ".json":
            items, lines = _json_items(path.read_text(encoding="utf-8-sig"))
        else:
            items, lines = _csv_items(path)
    except UnicodeDecodeError:
        return Manifest([], [Rejection(source, None, None, "not UTF-8 text: save it as UTF-8 "
                                                           "(Excel: 'CSV UTF-8'); no row used")], [])
    except (OSError, ValueError, csv.Error) as exc:
        return Manifest([], [Rejection(source, getattr(exc, "lineno", None), None,
                                       f"cannot read the manifest: {exc}; no row used")], [])
    rows, rejected, refused_files = [], [], []
    for item, line in zip(items, lines):
        if not isinstance(item, dict):
            rejected.append(Rejection(source, line, None, f"a row must be an object with named fields, "
                                                          f"not {type(item).__name__}"))
            continue
        if all(v in (None, "") for k, v in item.items() if k is not None) and item.get(None) is None:
            continue  # a blank row, as spreadsheets export them
        row, errors, file = parse_row(item)
        if row is None:
            rejected += [Rejection(source, line, field or None, reason) for field, reason in errors]
            if file:
                refused_files.append((file, line))
        else:
            rows.append(ManifestRow(row.file, row.metadata, line))
    return Manifest(rows, rejected, refused_files)


def _csv_items(path: Path) -> tuple[list[dict], list[int]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:  # read while the file is open: DictReader reads the header lazily
            raise ValueError("it is empty (no header row): write the header line "
                             "(call_id,file,customer_id,...) and one row per recording")
        items, lines = [], []
        for item in reader:
            items.append(item)
            lines.append(reader.line_num)
    return items, lines


def find_manifest(folder: Path) -> tuple[Path | None, list[Rejection]]:
    """The folder's manifest; a second one is reported, not silently ignored. Like every
    recording, the manifest must resolve (after symlinks) inside the folder: one that leads out is
    refused and never read."""
    root = folder.resolve()
    present, refused = [], []
    for name in MANIFEST_NAMES:
        candidate = folder / name
        if not (candidate.is_file() or candidate.is_symlink()):
            continue
        try:
            inside = candidate.resolve().is_relative_to(root) and candidate.resolve().is_file()
        except (OSError, RuntimeError):
            inside = False
        if inside:
            present.append(candidate)
        else:
            refused.append(Rejection(name, None, None, "is a symlink to a file outside the input folder (or to "
                                                       "nothing): refused, not read; no row used"))
    if not present:
        return None, refused
    return present[0], refused + [Rejection(p.name, None, None, f"ignored: {present[0].name} is the manifest "
                                                                "used (keep one manifest per folder)")
                                  for p in present[1:]]
