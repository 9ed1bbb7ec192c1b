"""What a run processes: the recordings of a folder whose audio or result-changing settings
differ from what is stored (the skip key: sha256 + settings fingerprint), and failed ones still
under MAX_ATTEMPTS; never a call whose raw data retention purged."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.config.settings import Settings, results_fingerprint
from pipeline.intake.ingest import ManifestRow, discover
from pipeline.records import Recording
from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.store import Store

# A call that failed is tried again on later runs, this many times in all, then left with its reason.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class BatchPlan:
    input_dir: Path
    todo: list[Recording]
    skipped: list[Recording]  # already processed: same contents, pipeline version and model
    missing: list[ManifestRow]  # manifest rows naming files that do not exist
    rejected: list = field(default_factory=list)  # manifest rows or files refused, with the reason
    attempts: dict[str, int] = field(default_factory=dict)  # call_id -> the try this run makes
    fingerprint: str = ""  # of the settings this run produces rows with (part of the skip key)
    # A new name for audio already processed (a renamed or copied file): (recording, its call's id).
    copies: list[tuple[Recording, str]] = field(default_factory=list)
    claimed: list[Recording] = field(default_factory=list)  # left to the running run that claimed them

    @property
    def n_found(self) -> int:
        return len(self.todo) + len(self.skipped) + len(self.copies) + len(self.claimed)


def call_fingerprint(spec: EngineSpec, settings: Settings | None = None,
                     options: TranscribeOptions | None = None) -> str:
    """The hash of what changes a call's rows (model, decoding, the policy's result-changing part,
    the data files), stored with each call and part of its skip key."""
    return results_fingerprint(spec.engine, spec.model, spec.compute_type, options or TranscribeOptions(),
                               (settings or Settings()).policy.results_part())


def plan_batch(input_dir: Path, store: Store, spec: EngineSpec, reprocess: bool = False,
               manifest: Path | None = None, customer_id: str | None = None, settings: Settings | None = None,
               options: TranscribeOptions | None = None) -> BatchPlan:
    """What to process: recordings whose audio or result-changing settings differ from what is
    stored, and failed ones still under MAX_ATTEMPTS."""
    fingerprint = call_fingerprint(spec, settings, options)
    found = discover(Path(input_dir), manifest, known_hashes=store.known_hashes())
    store.remember_hashes(found.hashed)
    tz = (settings or Settings()).tz
    recordings = [in_centre_time(r, tz) for r in found.recordings
                  if customer_id is None or _same_customer(r.metadata.customer_id, customer_id)]
    done, audio = store.processed_keys(), store.stored_audio()
    present = {str(r.path) for r in found.recordings}
    # One recording is one call. Audio found twice in this folder and new: processed once, under
    # the manifest's id when a copy has one, the other names being its paths.
    first_of: dict[str, Recording] = {}
    for rec in recordings:
        if rec.sha256 not in first_of or (first_of[rec.sha256].derived_id and not rec.derived_id):
            first_of[rec.sha256] = rec
    todo, skipped, attempts, copies = [], [], {}, []
    for rec in recordings:
        stored, twin = done.get(rec.call_id), audio.get(rec.sha256)
        if (stored is not None and stored.purged) or (twin is not None and twin.purged):
            # Its retention period ended: processing it again would bring back the raw text and
            # the path that were deleted (even with reprocess), so it is skipped for good.
            skipped.append(rec)
            continue
        if rec.derived_id:
            twin = audio.get(rec.sha256)
            if twin is not None and twin.call_id != rec.call_id:
                if not (twin.derived_id and twin.path not in present):
                    copies.append((rec, twin.call_id))  # a copy of a call still found under its name
                    continue
                rec = replace(rec, call_id=twin.call_id)  # renamed or moved: the same call, its new name
            elif twin is None and first_of[rec.sha256] is not rec:
                copies.append((rec, first_of[rec.sha256].call_id))
                continue
        stored = done.get(rec.call_id)
        same = stored is not None and stored.key == (rec.sha256, fingerprint)
        if same and not reprocess and (stored.status == "ok" or stored.attempts >= MAX_ATTEMPTS):
            if stored.path and stored.path != str(rec.path):
                copies.append((rec, rec.call_id))  # done under another name: this one is recorded as its path
            else:
                skipped.append(rec)
            continue
        # A failed call with the same contents counts its tries; anything new starts again at 1.
        attempts[rec.call_id] = stored.attempts + 1 if same and stored.status == "failed" and not reprocess else 1
        todo.append(rec)
    return BatchPlan(Path(input_dir), todo, skipped, found.missing, found.rejected, attempts, fingerprint, copies)


def in_centre_time(rec: Recording, tz) -> Recording:
    """Call times are stored as the centre's wall-clock time (what handlers read): a manifest time
    with a zone is converted to the centre's zone; one without a zone is already in it."""
    started = rec.metadata.started_at
    if started is None or started.tzinfo is None:
        return rec
    local = started.astimezone(tz).replace(tzinfo=None)
    return replace(rec, metadata=replace(rec.metadata, started_at=local))


def _same_customer(a: str | None, b: str) -> bool:
    return a is not None and a.strip().casefold() == b.strip().casefold()
