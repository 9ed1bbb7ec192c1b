"""Find recordings, read the manifest, hash contents.

A recording is identified by its call id (manifest, or derived from the file name) and its
contents by sha256, so a rerun can skip what it already processed with the same pipeline.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .audio import SUPPORTED_EXTENSIONS
from .types import CallMetadata, Recording

log = logging.getLogger(__name__)

MANIFEST_NAMES = ("manifest.csv", "manifest.json")
# Extensions that are audio but that we do not accept: picked up so they are reported as
# failed instead of silently ignored.
REJECTED_AUDIO_EXTENSIONS = frozenset({".wma", ".amr", ".aac", ".opus", ".aiff", ".au", ".3gp"})


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class ManifestRow:
    file: str
    metadata: CallMetadata


@dataclass(frozen=True)
class Discovery:
    recordings: list[Recording]
    missing: list[ManifestRow]  # manifest rows whose file does not exist


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def call_id_from_path(path: Path) -> str:
    """A stable id for a recording with no manifest row: its file name, made safe."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("_") or "call"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ManifestError(f"bad start time {value!r}: use ISO 8601, e.g. 2026-11-20T09:30:00") from exc


def _row_to_manifest(raw: dict, where: str) -> ManifestRow:
    row = {k.strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
    file = row.get("file") or row.get("path") or row.get("filename")
    if not file:
        raise ManifestError(f"{where}: no 'file' column")
    agent_channel = row.get("agent_channel")
    agent_channel = {"left": 0, "right": 1}.get(str(agent_channel).lower(), agent_channel)
    meta = CallMetadata(
        call_id=row.get("call_id") or call_id_from_path(Path(file)),
        customer_id=row.get("customer_id") or None,
        agent_id=row.get("agent_id") or None,
        case_id=row.get("case_id") or None,
        started_at=_parse_time(row.get("started_at") or row.get("start_time")),
        channel_layout=(row.get("channel_layout") or None),
        agent_channel=int(agent_channel) if agent_channel not in (None, "") else None,
        language=row.get("language") or None,
    )
    return ManifestRow(file=str(file), metadata=meta)


def read_manifest(path: Path) -> list[ManifestRow]:
    """Read a CSV (header row) or JSON (list of objects, or {"calls": [...]}) manifest."""
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        raws = data.get("calls", []) if isinstance(data, dict) else data
    else:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            raws = list(csv.DictReader(fh))
    rows = [_row_to_manifest(raw, f"{path.name} row {i + 1}") for i, raw in enumerate(raws)]
    ids = [r.metadata.call_id for r in rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ManifestError(f"{path.name}: duplicate call ids {dupes}")
    return rows


def find_manifest(folder: Path) -> Path | None:
    for name in MANIFEST_NAMES:
        if (folder / name).exists():
            return folder / name
    return None


def _audio_files(folder: Path) -> list[Path]:
    wanted = SUPPORTED_EXTENSIONS | REJECTED_AUDIO_EXTENSIONS
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def discover(folder: Path, manifest: Path | None = None) -> Discovery:
    """Every recording in `folder`, with manifest metadata where a row names it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    manifest = manifest or find_manifest(folder)
    rows = read_manifest(manifest) if manifest else []
    by_path: dict[Path, CallMetadata] = {}
    missing: list[ManifestRow] = []
    for row in rows:
        path = (folder / row.file).resolve()
        if path.exists():
            by_path[path] = row.metadata
        else:
            log.warning("manifest row %s names %s, which does not exist: skipped", row.metadata.call_id, row.file)
            missing.append(row)
    paths = set(by_path) | {p.resolve() for p in _audio_files(folder)}
    recordings: list[Recording] = []
    seen_ids: set[str] = set(m.call_id for m in by_path.values())
    for path in sorted(paths):
        meta = by_path.get(path)
        if meta is None:
            call_id = call_id_from_path(path)
            if call_id in seen_ids:  # same stem in two folders, or clashing with a manifest id
                call_id = f"{call_id}-{sha256_file(path)[:8]}"
            seen_ids.add(call_id)
            meta = CallMetadata(call_id=call_id)
        recordings.append(
            Recording(call_id=meta.call_id, path=path, sha256=sha256_file(path), metadata=meta,
                      size_bytes=path.stat().st_size)
        )
    return Discovery(recordings=recordings, missing=missing)
