"""The nightly flow, really run by Prefect, over the sample calls and bad inputs."""
import json

import pytest

from evaluation.metrics import error_rate, join_turn_texts
from tests.conftest import sample_ids, sample_truth

# Measured on these calls (see README): CER 11.2 % (zh-1001-a) / 16.6 % (zh-1001-b, overlapped
# speech), WER 9.2 % / 14.8 %. Bounds leave room for run-to-run noise, not for a broken pipeline.
MAX_ERROR = {"zh": 0.20, "en": 0.20}


def test_every_sample_call_is_stored_ok_with_its_manifest_metadata(read_db):
    rows = read_db.execute(
        "SELECT call_id, status, language, customer_id, case_id, channels, duration, model_id "
        "FROM calls WHERE status = 'ok' ORDER BY call_id").fetchall()
    assert [r[0] for r in rows] == sample_ids()
    for call_id, _, language, customer, case, channels, duration, model_id in rows:
        truth = sample_truth(call_id)
        assert language == truth["language"], call_id
        assert customer and case and model_id == "faster-whisper:base"
        assert channels == (2 if truth["layout"] == "stereo" else 1)
        assert abs(duration - truth["duration"]) < 0.2


@pytest.mark.parametrize("call_id", sample_ids())
def test_transcripts_match_the_script(read_db, call_id):
    truth = sample_truth(call_id)
    texts = [r[0] for r in read_db.execute("SELECT text FROM turns WHERE call_id = ? ORDER BY seq", [call_id]).fetchall()]
    reference = join_turn_texts([t["text"] for t in truth["turns"]], truth["language"])
    rate = error_rate(truth["language"], reference, join_turn_texts(texts, truth["language"]))
    assert rate <= MAX_ERROR[truth["language"]], f"{call_id}: error rate {rate:.3f}"


def test_mandarin_is_stored_in_simplified_characters(read_db):
    from pipeline.speech.asr import to_simplified

    texts = [r[0] for r in read_db.execute(
        "SELECT text FROM words JOIN calls USING (call_id) WHERE language = 'zh'").fetchall()]
    assert texts and all(to_simplified(t) == t for t in texts)


def test_words_are_stored_in_time_order_with_probabilities(read_db):
    rows = read_db.execute(
        'SELECT call_id, seq, start, "end", probability FROM words ORDER BY call_id, seq').fetchall()
    assert len(rows) > 200
    by_call = {}
    for call_id, seq, start, end, prob in rows:
        assert start <= end and 0 <= prob <= 1
        by_call.setdefault(call_id, []).append(start)
    for starts in by_call.values():
        assert starts == sorted(starts)


@pytest.mark.parametrize("call_id, reason", [
    ("empty", "empty"), ("not-audio", "not a readable audio"), ("silence", "silent"),
    ("truncated", "truncated"), ("voicemail", "unsupported format")])
def test_bad_inputs_are_failed_calls_with_reasons(read_db, call_id, reason):
    # No manifest row: the id is the file name made readable plus a hash of path and contents.
    (stored_id, status, error), = read_db.execute("SELECT call_id, status, error FROM calls WHERE call_id LIKE ?",
                                                  [call_id + "-%"]).fetchall()
    assert status == "failed" and reason in error
    assert read_db.execute("SELECT count(*) FROM words WHERE call_id = ?", [stored_id]).fetchone()[0] == 0


def test_manifest_row_for_missing_file_has_no_row_but_is_counted(read_db, nightly_db):
    assert read_db.execute("SELECT count(*) FROM calls WHERE call_id = 'zh-9999'").fetchone()[0] == 0
    summary = nightly_db[1]
    assert summary["n_missing"] == 1
    assert summary["n_processed"] == len(sample_ids()) and summary["n_failed"] == 5


def test_run_row_records_counts_and_timing(read_db):
    run = read_db.execute("SELECT flow, n_found, n_processed, n_failed, n_missing, audio_seconds, wall_seconds "
                          "FROM runs").fetchall()
    assert len(run) == 1
    flow, found, processed, failed, missing, audio_s, wall_s = run[0]
    assert (flow, found, processed, failed, missing) == ("nightly", 9, 4, 5, 1)
    assert audio_s > 150 and wall_s > 0


def test_flow_publishes_a_table_artifact(nightly_db):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:  # this run's version of the key (other tests publish too)
        versions = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly-calls"])))
    (artifact,) = [a for a in versions if nightly_db[1]["run_id"] in (a.description or "")]
    table = artifact.data if isinstance(artifact.data, list) else json.loads(artifact.data)
    ids = {row["call_id"] for row in table}
    assert ids >= set(sample_ids()) and any(i.startswith("empty-") for i in ids)
    assert "4 processed, 5 failed" in artifact.description
    assert "completed with failures" in artifact.description
    assert {row["status"] for row in table} >= {"ok", "failed", "missing"}


def test_rerun_retries_only_failed_calls_and_duplicates_nothing(nightly_db, batch_dir):
    """Runs last in this module: more nightly runs over the same folder. Failed calls are tried
    again up to MAX_ATTEMPTS in all, then left with their reason; ok calls are skipped."""
    from flows.nightly import nightly
    from pipeline.run.plan import MAX_ATTEMPTS
    from pipeline.store.connect import Database

    db_path = nightly_db[0]
    before = _counts(db_path)
    for attempt in range(2, MAX_ATTEMPTS + 1):
        summary = nightly(input_dir=str(batch_dir), db_path=str(db_path))
        assert (summary["n_processed"], summary["n_failed"], summary["n_skipped"]) == (0, 5, 4)
        assert summary["status"] == "completed_with_failures"
    summary = nightly(input_dir=str(batch_dir), db_path=str(db_path))
    assert (summary["n_processed"], summary["n_failed"], summary["n_skipped"]) == (0, 0, 9)
    assert _counts(db_path) == before
    with Database(db_path, read_only=True).reading() as conn:
        failed = conn.execute("SELECT DISTINCT attempts, error_stage FROM calls WHERE status = 'failed'").fetchall()
    assert failed == [(MAX_ATTEMPTS, "decode")]


def _counts(db_path):
    from pipeline.store.connect import Database

    with Database(db_path, read_only=True).reading() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("calls", "words", "turns")}
