"""Where the database key comes from. The database file is encrypted at rest by default
(DuckDB's AES-GCM, `pipeline.store.connect`); its key is never stored beside the data.

Sources, first found wins: the key itself in CALLBRIEF_DB_KEY (a secret manager or a service
unit's credential), else a key file: the `db_key_file` setting (CALLBRIEF_DB_KEY_FILE), else
`$XDG_CONFIG_HOME/callbrief/db.key` (`~/.config/callbrief/db.key`). A key file must be readable
by its owner only (mode 600). `callbrief keys init` makes one; `encrypt_database = false`
(CALLBRIEF_ENCRYPT_DATABASE=false) keeps the database plain.

`configure` is called by `load_settings` at an entry point; a library user who never loads
settings gets the same answers from the environment.
"""
from __future__ import annotations

import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.config.paths import PROJECT_ROOT, data_dir, running_from_checkout

KEY_ENV = "CALLBRIEF_DB_KEY"
KEY_FILE_ENV = "CALLBRIEF_DB_KEY_FILE"
ENCRYPT_ENV = "CALLBRIEF_ENCRYPT_DATABASE"


class KeyProblem(ValueError):
    """The key is missing, unsafe or unusable; the message says what to do."""


@dataclass(frozen=True)
class DatabaseKey:
    key: str | None  # None: the database is plain (encryption off)
    source: str  # where it came from, for messages (never the key itself)


@dataclass(frozen=True)
class _Choice:
    encrypt: bool
    key_file: str


_configured: _Choice | None = None


def configure(encrypt: bool, key_file: str = "") -> None:
    """The settings' choice for this process (from `load_settings`), and for the processes it
    starts (a web server, Dask workers on this machine): they read the same environment."""
    global _configured
    _configured = _Choice(bool(encrypt), key_file or "")
    os.environ[ENCRYPT_ENV] = "true" if encrypt else "false"
    if key_file:
        os.environ[KEY_FILE_ENV] = str(Path(key_file).expanduser())


def _choice() -> _Choice:
    if _configured is not None:
        return _configured
    flag = os.environ.get(ENCRYPT_ENV, "true").strip().lower()
    return _Choice(flag not in ("0", "false", "no", "off"), os.environ.get(KEY_FILE_ENV, ""))


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "callbrief" / "db.key"


def key_file() -> Path:
    """The key file this process uses (when the key does not come from CALLBRIEF_DB_KEY)."""
    chosen = _choice().key_file
    return Path(chosen).expanduser() if chosen else default_key_file()


def encrypting() -> bool:
    return _choice().encrypt


def database_key() -> DatabaseKey:
    """The key to open the database with, or KeyProblem saying what to do."""
    if not encrypting():
        return DatabaseKey(None, "encryption off (encrypt_database = false)")
    if os.environ.get(KEY_ENV):
        return DatabaseKey(os.environ[KEY_ENV].strip(), KEY_ENV)
    path = key_file()
    return DatabaseKey(read_key_file(path), str(path))


_cache: dict[Path, tuple[tuple[int, int], str]] = {}


def read_key_file(path: Path) -> str:
    """The key in `path`, refused when others can read it. Cached until the file changes."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyProblem(f"no database key: {path} does not exist; run `callbrief keys init` to make one (or set "
                         f"{KEY_ENV}, or {KEY_FILE_ENV} to where the key is)") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyProblem(f"the database key file {path} can be read by other users: run `chmod 600 {path}`")
    stamp = (info.st_mtime_ns, info.st_size)
    cached = _cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise KeyProblem(f"the database key file {path} is empty: restore the key the database was written with")
    _cache[path] = (stamp, key)
    return key


def init_key(path: Path | None = None, if_missing: bool = False, db_folders: tuple[Path, ...] = ()) -> tuple[Path, bool]:
    """Make a new random key file (mode 600, its folder 700). Never inside the repository or a
    data folder (whoever copies the data must not get the key with it). Returns (path, made)."""
    path = Path(path or key_file()).expanduser().absolute()
    for folder in (*([PROJECT_ROOT] if running_from_checkout() else []), data_dir(), *db_folders):
        if path.is_relative_to(Path(folder).absolute()):
            raise KeyProblem(f"a key file inside {folder} would be copied with the data or the code: keep it "
                             f"elsewhere (default {default_key_file()})")
    if path.exists():
        if if_missing:
            read_key_file(path)  # an unsafe existing file is still refused
            return path, False
        raise KeyProblem(f"{path} exists already: a new key would make the database written with it unreadable "
                         "(remove it yourself only if no database uses it)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path, True


# --- files written beside the database (redacted audio, exports) -----------------------------
# Sealed with AES-GCM under a key derived from the database key, so they are as safe at rest as
# the database and need no second secret. `callbrief keys decrypt` opens one for a person.

SEALED_MAGIC = b"CBSEAL1\n"


def _file_cipher() -> AESGCM:
    key = database_key()
    if key.key is None:
        raise KeyProblem("files can be sealed only with a database key (encrypt_database is false)")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"callbrief sealed files v1").derive(
        key.key.encode("utf-8"))
    return AESGCM(derived)


def seal(data: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return SEALED_MAGIC + nonce + _file_cipher().encrypt(nonce, data, SEALED_MAGIC)


def unseal(blob: bytes, name: str = "file") -> bytes:
    if not blob.startswith(SEALED_MAGIC) or len(blob) < len(SEALED_MAGIC) + 12 + 16:
        raise KeyProblem(f"{name} is not a sealed callbrief file (or it is cut short)")
    nonce = blob[len(SEALED_MAGIC):len(SEALED_MAGIC) + 12]
    try:
        return _file_cipher().decrypt(nonce, blob[len(SEALED_MAGIC) + 12:], SEALED_MAGIC)
    except InvalidTag:
        raise KeyProblem(f"{name} does not open with this database key (another key, or a damaged file)") from None


def write_sealed(path: Path, data: bytes) -> Path:
    """`data` sealed into `path` (written whole, then renamed: never a half file)."""
    return write_file(path, seal(data))


def write_file(path: Path, data: bytes) -> Path:
    """`data` into `path`, written whole under a name of this writer's own, then renamed: never a
    half file, and two writers of the same file do not collide."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
