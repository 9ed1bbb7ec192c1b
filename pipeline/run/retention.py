"""Retention: raw data is kept for the periods the settings give, then deleted (`callbrief purge`,
and the last step of the nightly run).

Three periods, each counted from when the call started (calls.started_at, the centre's time;
processed_at for a call without one), so a call processed late is not kept longer:
- recording paths (`retain_audio_paths_days`): calls.path and call_paths are forgotten, so
  nothing in callbrief can play the original any more. The recording files are the bank's: they
  are deleted too only when `purge_recording_files` is set, and only a file that still holds the
  call's audio (same sha256);
- raw words and turn texts (`retain_raw_text_days`): `words` rows, `turns.text`, `corrections`;
  the masked text (turns.redacted_text), summaries, escalation, briefings and QA stay;
- redacted audio (`retain_redacted_audio_days`): the redacted copies under `redacted/` beside the
  database (see `redacted_audio_files`: the name a writer of them must use).

Never purged: a call in a QA sample not every call of which has a review yet, and every call of
a customer whose complaint is open (no callback recorded after their latest complaint call).
Each purge writes what it deleted (call ids and counts per table, never content) to the audit
log, in the same transaction as the deletion. A purged call is marked, so a rerun deletes
nothing more, and it is never processed again (pipeline/run/plan.py).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline.config.settings import Settings
from pipeline.intake.ingest import sha256_file
from pipeline.outputs.redacted_audio import CannotRedact, cache_folder, redacted_audio
from pipeline.store import Cutoff, PurgeCounts, Store

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
SEALED_SUFFIX = ".enc"  # a file sealed with the database key (pipeline/store/encryption.py)


def redacted_call_id(name: str) -> str | None:
    """The call a redacted audio file belongs to: the file is `<call_id>-<digest>.flac[.enc]`, as
    pipeline.outputs.redacted_audio writes it (or `<call_id><audio suffix>[.enc]`); None for any
    other name."""
    if name.endswith(SEALED_SUFFIX):
        name = name[:-len(SEALED_SUFFIX)]
    for suffix in AUDIO_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            stem = name[:-len(suffix)]
            digested = re.fullmatch(r"(.+)-[0-9a-f]{16}", stem)
            return digested.group(1) if digested else stem
    return None


def redacted_audio_files(folder: Path, call_ids: list[str]) -> list[Path]:
    """The redacted audio files of these calls in `folder` (none when it does not exist)."""
    if not folder.is_dir() or not call_ids:
        return []
    wanted = set(call_ids)
    return sorted(p for p in folder.iterdir() if p.is_file() and redacted_call_id(p.name) in wanted)


def cutoff(days: int, tz, now: datetime | None = None) -> Cutoff:
    """The moment `days` days ago, as the centre's wall-clock time and as UTC (both naive)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    then = now - timedelta(days=days)
    return Cutoff(local=then.astimezone(tz).replace(tzinfo=None), utc=then.replace(tzinfo=None))


@dataclass
class PurgeReport:
    settings: Settings
    dry_run: bool
    cutoffs: dict[str, Cutoff]
    counts: PurgeCounts
    redacted_calls: list[str] = field(default_factory=list)
    redacted_files: list[Path] = field(default_factory=list)
    redacted_folder: Path | None = None  # where the redacted copies are kept
    recording_files: list[str] = field(default_factory=list)  # deleted (or, in a dry run, to delete)
    problems: list[str] = field(default_factory=list)

    @property
    def deleted(self) -> int:
        """Everything deleted (or to delete): table rows and values, and files."""
        return sum(self.counts.tables.values()) + len(self.redacted_files) + len(self.recording_files)

    def lines(self) -> list[str]:
        s, c = self.settings, self.counts
        verb = "would delete" if self.dry_run else "deleted"

        def before(kind: str) -> str:
            return f"started before {self.cutoffs[kind].local:%Y-%m-%d %H:%M}"

        def tables(names) -> str:
            return ", ".join(f"{n} {c.tables.get(n, 0)}" for n in names)

        out = [f"retention: recording paths {s.retain_audio_paths_days} days, raw words and turn texts "
               f"{s.retain_raw_text_days} days, redacted audio {s.retain_redacted_audio_days} days "
               "(counted from each call's start)",
               f"{verb} the recording paths of {len(c.calls['audio'])} call(s) {before('audio')}: "
               f"{tables(('calls.path', 'call_paths'))}"
               + (f"; recording files {len(self.recording_files)}" if s.purge_recording_files else
                  " (the recording files themselves are left: purge_recording_files is off)"),
               f"{verb} the raw words and turn texts of {len(c.calls['text'])} call(s) {before('text')}: "
               f"{tables(('words', 'turns.text', 'corrections'))} (masked texts, summaries, scores, briefings "
               "and QA reviews kept)",
               f"{verb} the redacted audio of calls {before('redacted')}: {len(self.redacted_files)} file(s) "
               f"in {self.redacted_folder}"]
        if c.kept:
            out.append(f"kept {len(c.kept)} call(s) past a period: {len(c.kept_qa)} in open QA samples, "
                       f"{len(c.kept_cases)} with open cases")
        out += [f"not deleted: {p}" for p in self.problems]
        if self.dry_run:
            out.append("dry run: nothing was deleted")
        return out

    def audit_detail(self, counts: PurgeCounts | None = None) -> str:
        c = counts or self.counts
        return json.dumps({"dry_run": self.dry_run,
                           "periods_days": {"audio_paths": self.settings.retain_audio_paths_days,
                                            "raw_text": self.settings.retain_raw_text_days,
                                            "redacted_audio": self.settings.retain_redacted_audio_days},
                           "cutoffs": {k: v.local.isoformat(timespec="seconds") for k, v in self.cutoffs.items()},
                           "tables": c.tables, "calls": c.calls,
                           "kept": {"qa_samples": c.kept_qa, "open_cases": c.kept_cases}},
                          ensure_ascii=False, sort_keys=True)


def purge(store: Store, settings: Settings, dry_run: bool = False, now: datetime | None = None,
          redacted_dir: Path | None = None) -> PurgeReport:
    """Delete the raw data past its period (see the module's text); a dry run counts the same and
    deletes nothing. `redacted_dir`: where redacted audio is written (default: beside the database)."""
    tz = settings.tz
    cutoffs = {"audio": cutoff(settings.retain_audio_paths_days, tz, now),
               "text": cutoff(settings.retain_raw_text_days, tz, now),
               "redacted": cutoff(settings.retain_redacted_audio_days, tz, now)}
    report = PurgeReport(settings, dry_run, cutoffs, PurgeCounts())
    folder = redacted_dir or cache_folder(store.path, settings.redacted_audio_dir)
    if not dry_run:
        _redact_before_words_go(store, settings, cutoffs, folder, report.problems)
    counts, redacted_calls = store.purge_raw_data(
        cutoffs["audio"], cutoffs["text"], cutoffs["redacted"], settings.policy.levels.complaint, settings.timezone,
        dry_run=dry_run, audit_detail=report.audit_detail)
    report.counts, report.redacted_calls = counts, redacted_calls
    report.redacted_files, report.redacted_folder = redacted_audio_files(folder, redacted_calls), folder
    if settings.purge_recording_files:
        report.recording_files = _recording_files(store.path, counts.recording_files, report.problems)
    if dry_run:
        return report
    deleted_files = _delete(report.redacted_files, report.problems) + _delete(
        [Path(p) for p in report.recording_files], report.problems)
    store.forget_file_hashes([p for p in report.recording_files if not Path(p).exists()])
    if deleted_files or report.problems:
        store.audit(None, "system", "purge_files", "retention", json.dumps(
            {"redacted_audio_calls": sorted({redacted_call_id(p.name) for p in report.redacted_files}),
             "recording_files_deleted": len(report.recording_files), "files_deleted": deleted_files,
             "problems": report.problems}, ensure_ascii=False, sort_keys=True))
    return report


def _redact_before_words_go(store: Store, settings: Settings, cutoffs: dict, folder: Path, problems: list[str]) -> None:
    """The redacted copy of each call whose word times are about to go but whose redacted audio
    is kept longer: made now, while the words and the recording still exist (it is made on first
    play otherwise, which would then be too late)."""
    due, redacted_due = store.purge_raw_data(cutoffs["audio"], cutoffs["text"], cutoffs["redacted"],
                                             settings.policy.levels.complaint, settings.timezone, dry_run=True)
    for call_id in sorted(set(due.calls.get("text", [])) - set(redacted_due)):
        try:
            redacted_audio(store, call_id, folder)
        except CannotRedact as exc:
            problems.append(f"{call_id}: no redacted copy kept ({exc})")


def _recording_files(db_path: Path, found: list[tuple[str, str]], problems: list[str]) -> list[str]:
    """The original recordings of purged calls that still hold the call's audio (a file now at
    the same path with other contents, a new recording, is left)."""
    out = []
    for path, sha in found:
        file = Path(path) if Path(path).is_absolute() else db_path.parent / path
        if not file.is_file():
            continue
        try:
            same = sha256_file(file) == sha
        except OSError as exc:
            problems.append(f"{file}: cannot read it ({exc.strerror or exc})")
            continue
        if same:
            out.append(str(file))
        else:
            problems.append(f"{file}: holds other audio now (a newer recording), left")
    return out


def _delete(files: list[Path], problems: list[str]) -> int:
    n = 0
    for file in files:
        try:
            file.unlink()
            n += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems.append(f"{file}: {exc.strerror or exc}; delete it by hand")
    return n


def nightly_purge(store: Store, settings: Settings) -> list[str]:
    """The nightly run's last step: the purge's lines, or why it did not run (a run's calls are
    written already; a purge that fails is tried again the next night)."""
    try:
        return purge(store, settings).lines()
    except Exception as exc:  # noqa: BLE001 - reported in the run's log; tomorrow's run tries again
        log.error("purge failed: %s", exc)
        return [f"purge failed: {exc.__class__.__name__}: {exc}"]


__all__ = ["PurgeReport", "cutoff", "nightly_purge", "purge", "redacted_audio_files",
           "redacted_call_id"]
