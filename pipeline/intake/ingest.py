"""Find the recordings of an input folder, with their manifest metadata, id and content hash.

Bad input is caught here, at the door, and never raises: a refused manifest row, a path that
leaves the folder, a clash of ids each become a `Rejection` (one line saying where and why) and
the rest of the folder goes on. What is refused is never opened or hashed.

- Every recording resolves, after symlinks, inside the input folder.
- A call's id is the manifest's call_id, else derived from its path in the folder plus its
  contents (`identity.derived_call_id`): stable across reruns, never shared by two recordings.
- A recording whose manifest row was refused is held back (reported, not processed): processing
  it without its metadata would store it without its customer, and again under the row's id
  once the row is fixed. When the manifest as a whole cannot be used (unreadable, not a list,
  no `file` column) no row says which recordings it meant, so the folder's recordings are
  processed with derived ids rather than stopping the night's batch on one file.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from pipeline.intake.audio import SUPPORTED_EXTENSIONS
from pipeline.intake.identity import derived_call_id, safe_name  # noqa: F401  (safe_name: part of this module's interface)
from pipeline.intake.manifest import ManifestRow, Rejection, find_manifest, read_manifest
from pipeline.records import CallMetadata, Recording

log = logging.getLogger(__name__)

# Extensions that are audio but that we do not accept: picked up so they are reported as
# failed instead of silently ignored.
REJECTED_AUDIO_EXTENSIONS = frozenset({".wma", ".amr", ".aac", ".opus", ".aiff", ".au", ".3gp"})

__all__ = ["Discovery", "ManifestRow", "Rejection", "discover", "read_manifest", "safe_name", "sha256_file"]


@dataclass(frozen=True)
class Discovery:
    recordings: list[Recording]
    missing: list[ManifestRow]  # manifest rows whose file does not exist
    rejected: list[Rejection] = field(default_factory=list)  # everything refused, one line each
    hashed: list[tuple[str, int, int, str]] = field(default_factory=list)  # (path, size, mtime_ns, sha256) read now


FileKey = tuple[str, int, int]  # (resolved path, size in bytes, modification time in ns)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _suffix(name: str) -> str:
    """`PurePath(name).suffix`, lower-cased, without building a path (planning lists 10,000s)."""
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def _audio_files(root: str) -> list[tuple[str, os.DirEntry]]:
    """Audio files under `root` (a resolved folder) as (path, directory entry), in path order.

    Symlinked folders are not followed (a link may lead anywhere, or loop); symlinked files are
    listed and checked like any path. As `root` is resolved and only real folders are entered,
    the path of an entry that is not itself a symlink is already resolved: no per-file resolve."""
    wanted = SUPPORTED_EXTENSIONS | REJECTED_AUDIO_EXTENSIONS
    found, folders = [], [root]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir():  # follows a link, as os.walk does, to leave linked folders out
                            if not entry.is_symlink():
                                folders.append(entry.path)
                        elif _suffix(entry.name) in wanted:
                            found.append((entry.path, entry))
                    except OSError:
                        continue
        except OSError:  # unreadable, or gone since listed: os.walk skips it too
            continue
    return sorted(found, key=lambda item: item[0].split(os.sep))  # Path order (by parts)


MISSING = "does not exist"
_NO_METADATA = CallMetadata(call_id="")


def _inside(root: Path, path: Path) -> Path | str:
    """`path` resolved (after symlinks) when it is a regular file inside `root`, else why not."""
    try:
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            what = "is a symlink to" if path.is_symlink() else "resolves to"
            return f"{what} a file outside the input folder: refused, not opened"
        if not resolved.exists():
            return MISSING
        if not resolved.is_file():
            return "not a regular file"
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        return f"cannot be resolved ({exc.strerror or exc})"
    return resolved


def _where_listed(root: Path, path: str, entry: os.DirEntry) -> tuple[str, str | None]:
    """`_inside` for a file found by `_audio_files`, as (resolved path, None) or ("", why not).
    A plain entry is its own resolved path: only symlinks are resolved."""
    if entry.is_symlink():
        where = _inside(root, Path(path))
        return (str(where), None) if isinstance(where, Path) else ("", where)
    try:
        return (path, None) if entry.is_file(follow_symlinks=False) else ("", "not a regular file")
    except OSError as exc:
        return "", f"cannot be resolved ({exc.strerror or exc})"


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _row_problems(rows: list[ManifestRow], source: str, paths: dict[int, str]) -> dict[int, list[Rejection]]:
    """Clashes between rows: a call_id used twice, or one file named twice. Both rows are refused:
    which of them is right cannot be told, and picking one could file a call under the wrong customer."""
    problems: dict[int, list[Rejection]] = defaultdict(list)
    for key, name, what in ((lambda i: rows[i].metadata.call_id, "call_id", "call_id"),
                            (lambda i: paths.get(i), "file", "file")):
        groups: dict[object, list[int]] = defaultdict(list)
        for i in range(len(rows)):
            if key(i):
                groups[key(i)].append(i)
        for group in (g for g in groups.values() if len(g) > 1):
            for i in group:
                others = [str(rows[j].line) for j in group if j != i]
                value = rows[i].metadata.call_id if name == "call_id" else rows[i].file
                where = f"line {others[0]}; both rows" if len(others) == 1 else \
                    f"lines {', '.join(others)}; all {len(group)} rows"
                problems[i].append(Rejection(source, rows[i].line, name,
                                             f"{value!r}: the same {what} is on {where} skipped"))
    return problems


def discover(folder: Path, manifest: Path | None = None, known_hashes: Mapping[FileKey, str] | None = None) -> Discovery:
    """Every usable recording in `folder`, with manifest metadata where a row names it; everything
    refused in `rejected`. Raises only when `folder` itself is not a folder.

    `known_hashes` maps (path, size, mtime in ns) to the sha256 found on an earlier run: a file
    whose size and modification time have not changed is not read again (planning 10,000 files
    with nothing new takes a stat each, not a read each). Files hashed now are in `hashed`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    root = folder.resolve()
    # Resolved once, here: paths below are plain strings (planning 10,000 files is a stat each).
    found = _audio_files(str(root))
    plain = {path for path, entry in found if not entry.is_symlink()}
    rejected: list[Rejection] = []
    if manifest is None:
        manifest, rejected = find_manifest(folder)
    rows: list[ManifestRow] = []
    held_back: dict[str, int | None] = {}  # recording -> manifest line of its refused row
    source = ""
    if manifest is not None:
        source = _display(root, Path(manifest).resolve())
        read = read_manifest(Path(manifest), source)
        rows, rejected = read.rows, rejected + read.rejected
        for file, line in read.refused_files:
            if isinstance(where := _inside(root, root / file), Path):
                held_back[str(where)] = line

    # Manifest rows: paths first (nothing outside the folder is touched), then clashes. A row
    # naming a plain file found in the folder, with no "." or ".." on the way, needs no resolve.
    paths: dict[int, str] = {}
    missing: list[ManifestRow] = []
    bad_rows: set[int] = set()
    for i, row in enumerate(rows):
        direct = os.path.join(str(root), row.file)
        if direct in plain and not {".", ".."} & set(row.file.split("/")):
            paths[i] = direct
            continue
        where = _inside(root, root / row.file)
        if isinstance(where, Path):
            paths[i] = str(where)
        elif where == MISSING:
            log.warning("%s line %s names %s, which does not exist: skipped", source, row.line, row.file)
            missing.append(row)
        else:
            rejected.append(Rejection(source, row.line, "file", f"{row.file!r} {where}"))
            bad_rows.add(i)
    for i, problems in sorted(_row_problems(rows, source, paths).items()):
        rejected += problems
        bad_rows.add(i)
    held_back |= {paths[i]: rows[i].line for i in bad_rows if i in paths}
    listed = {paths[i]: rows[i] for i in paths if i not in bad_rows}
    for path in [p for p in listed if p in held_back]:  # a good row and a refused one name one file
        row = listed.pop(path)
        rejected.append(Rejection(source, row.line, "file", f"{row.file!r}: the same file is on line "
                                                            f"{held_back[path]}, which was refused; both rows skipped"))

    # Files in the folder: a symlink leading out is refused; one leading in is its target.
    unlisted: dict[str, None] = {}
    for path, entry in found:
        where, problem = _where_listed(root, path, entry)
        if problem is not None:
            reason = "is a broken symlink" if problem == MISSING else problem
            rejected.append(Rejection(_display(root, Path(path)), None, None, reason))
        elif where not in listed and where not in held_back:
            unlisted[where] = None
    for path, line in sorted(held_back.items(), key=lambda item: item[0].split(os.sep)):
        rejected.append(Rejection(_display(root, Path(path)), None, None,
                                  f"held back: its row ({source} line {line}) was refused; fix the row to process it"))

    recordings: list[Recording] = []
    hashed: list[tuple[str, int, int, str]] = []
    for path, row in listed.items():
        rec = _recording(root, path, row.metadata, rejected, known_hashes or {}, hashed)
        recordings += [rec] if rec else []
    taken = {r.call_id for r in recordings}
    for path in unlisted:
        rec = _recording(root, path, _NO_METADATA, rejected, known_hashes or {}, hashed)
        if rec is None:
            continue
        if rec.call_id in taken:  # a manifest id spelled like a derived one
            rejected.append(Rejection(_display(root, Path(path)), None, None,
                                      f"its derived id {rec.call_id!r} is already a manifest call_id: refused"))
            continue
        taken.add(rec.call_id)
        recordings.append(rec)
    for rejection in rejected:
        log.warning("refused: %s", rejection)
    return Discovery(recordings=sorted(recordings, key=lambda r: r.path.parts), missing=missing, rejected=rejected,
                     hashed=hashed)


def _relative(root: Path, path: str) -> str:
    """`path` (resolved, inside `root`) relative to `root`, in POSIX form."""
    top = str(root).rstrip(os.sep) + os.sep
    return path[len(top):].replace(os.sep, "/") if path.startswith(top) else Path(path).relative_to(root).as_posix()


def _recording(root: Path, path: str, metadata: CallMetadata, rejected: list[Rejection],
               known_hashes: Mapping[FileKey, str], hashed: list) -> Recording | None:
    try:
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
        digest, size = known_hashes.get(key), stat.st_size
        if digest is None:
            digest = sha256_file(Path(path))
            hashed.append((*key, digest))
    except OSError as exc:  # unreadable, or gone since the folder was listed
        rejected.append(Rejection(_display(root, Path(path)), None, None, f"cannot be read ({exc.strerror or exc})"))
        return None
    derived = not metadata.call_id
    if derived:
        call_id = derived_call_id(_relative(root, path), digest)
        # A file no manifest row names has no metadata: build it directly (replace() costs per file).
        metadata = CallMetadata(call_id=call_id) if metadata == _NO_METADATA else replace(metadata, call_id=call_id)
    return Recording(call_id=metadata.call_id, path=Path(path), sha256=digest, metadata=metadata, size_bytes=size,
                     derived_id=derived)
