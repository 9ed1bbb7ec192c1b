"""Planning a large folder with nothing new reads no file again: it stats them."""
from __future__ import annotations

import os
import time

from pipeline.run.plan import plan_batch
from pipeline.speech.asr import EngineSpec
from pipeline.store import Store


def test_planning_10000_files_hashes_only_what_changed(tmp_path, monkeypatch):
    import pipeline.intake.ingest as ingest

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(10_000):
        (folder / f"r{i:05d}.wav").write_bytes(i.to_bytes(4, "little") * 64)
    store = Store(tmp_path / "db.duckdb")
    first = plan_batch(folder, store, EngineSpec())
    assert len(first.todo) == 10_000 and len({r.call_id for r in first.todo}) == 10_000

    reads = []
    real = ingest.sha256_file
    monkeypatch.setattr(ingest, "sha256_file", lambda path, *a: reads.append(path) or real(path, *a))
    clock = time.perf_counter()
    again = plan_batch(folder, store, EngineSpec())
    seconds = time.perf_counter() - clock
    assert reads == [] and [r.sha256 for r in again.todo] == [r.sha256 for r in first.todo]
    assert [r.call_id for r in again.todo] == [r.call_id for r in first.todo]

    changed = folder / "r00042.wav"
    changed.write_bytes(b"new contents" * 100)
    os.utime(changed, ns=(time.time_ns(), time.time_ns()))
    third = plan_batch(folder, store, EngineSpec())
    assert reads == [changed.resolve()]
    assert {r.sha256 for r in third.todo if r.path == changed.resolve()} != {r.sha256 for r in first.todo if r.path == changed.resolve()}
    print(f"planning 10,000 files, nothing changed: {seconds:.2f} s")


def test_a_result_changing_setting_reprocesses_the_same_settings_skip(tmp_path):
    import shutil

    from evaluation.recognition import replay_call
    from pipeline.run.execute import write_result
    from pipeline.speech.asr import TranscribeOptions
    from tests.conftest import SAMPLES

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy2(SAMPLES / "zh-1001-a.wav", folder)
    (folder / "manifest.csv").write_text("call_id,file,customer_id\nzh-1001-a,zh-1001-a.wav,C1001\n")
    store = Store(tmp_path / "db.duckdb")
    plan = plan_batch(folder, store, EngineSpec())
    assert [r.call_id for r in plan.todo] == ["zh-1001-a"]
    write_result(store, replay_call("zh-1001-a"), "run-1", 1, plan.fingerprint)
    assert store.query("SELECT settings_hash FROM calls").settings_hash[0] == plan.fingerprint
    assert plan_batch(folder, store, EngineSpec()).todo == []
    assert len(plan_batch(folder, store, EngineSpec(), options=TranscribeOptions(beam_size=1)).todo) == 1
    assert len(plan_batch(folder, store, EngineSpec(model="tiny")).todo) == 1


def test_derived_ids_are_what_the_pathlib_definition_gives():
    """Planning derives ids without building paths; an id must never change (it would file the same
    recording twice), so the fast path is checked against the pathlib definition on awkward names."""
    import hashlib
    from pathlib import PurePosixPath

    from pipeline.intake.identity import _shorten, derived_call_id, readable_slug

    def by_pathlib(relative: str, sha: str) -> str:
        path = PurePosixPath(relative)
        slug = "-".join(filter(None, (readable_slug(p) for p in path.with_suffix("").parts)))
        digest = hashlib.sha256(f"{path.as_posix()}\n{sha}".encode()).hexdigest()[:8]
        return f"{_shorten(slug) or 'rec'}-{digest}"

    sha = "ab" * 32
    for name in ("a.wav", "day1/rec001.wav", "投诉录音/第一.mp3", ".hidden", "a.", "a.b.c.wav", "x/.wav",
                 "dir.v2/file", "a/./b.wav", "./a.wav", "a//b.wav", "/abs/a.wav", "a/../b.wav", "é/Ｆ１.flac",
                 "a b/c d.WAV", "..", "a/b/", "x.tar.gz", "n" * 80 + ".wav"):
        assert derived_call_id(name, sha) == by_pathlib(name, sha), name
