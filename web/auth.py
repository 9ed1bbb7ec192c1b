"""Local users, passwords (argon2), login back-off, signed session cookies and CSRF tokens.

A session is a signed, timestamped cookie {user, epoch, csrf}: itsdangerous checks the
signature and the age; the user's `session_epoch` in the database is bumped by logout, a new
password or disabling, which ends every older cookie at once.
"""
from __future__ import annotations

import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from pipeline.analysis.i18n import LANGUAGES
from pipeline.store import Store

from . import passwords

HASHER = PasswordHasher()
MIN_PASSWORD = passwords.MIN_LENGTH
FREE_FAILURES = 3  # per name; then each failure doubles the wait: 30 s, 60 s, 2 min ... capped at 15 min
FREE_ADDRESS_FAILURES = 10  # per client address, over any names; then the same growing waits
MAX_LOCK_SECONDS = 15 * 60
NAME_MEMORY = timedelta(days=1)  # a name's failures are forgotten a day after the last one (or at a login)
ADDRESS_MEMORY = timedelta(hours=1)  # an address's an hour after its last one (a login does not clear them)
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,40}$")
ROLES = ("handler", "qa", "lead", "admin")  # the users table's CHECK names the same (pipeline.store.schema)


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    username: str
    role: str
    session_epoch: int


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, like every timestamp the pipeline writes


def check_password_rules(password: str, username: str = "") -> None:
    """Every password that is set goes through here (web.passwords says what is refused)."""
    if (refused := passwords.problem(password, username)) is not None:
        raise UserError(refused)


def add_user(db_path: Path, username: str, role: str, password: str, lang: str = "zh") -> None:
    if not USERNAME.match(username):
        raise UserError(f"bad user name {username!r}: 2-40 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if lang not in LANGUAGES:
        raise UserError(f"unknown language {lang!r}: use one of {', '.join(LANGUAGES)}")
    check_password_rules(password, username)
    if not Store(db_path).add_user(username, role, HASHER.hash(password), lang):
        raise UserError(f"user {username} exists (use `callbrief users passwd {username}`)")


def set_password(db_path: Path, username: str, password: str) -> None:
    check_password_rules(password, username)
    if not Store(db_path).set_password_hash(username, HASHER.hash(password)):
        raise UserError(f"no user {username}")


def set_disabled(db_path: Path, username: str, disabled: bool = True) -> None:
    if not Store(db_path).set_user_disabled(username, disabled):
        raise UserError(f"no user {username}")


def set_lang(db_path: Path, username: str, lang: str) -> None:
    if lang not in LANGUAGES:
        raise UserError(f"unknown language {lang!r}: use one of {', '.join(LANGUAGES)}")
    if not Store(db_path).set_user_lang(username, lang):
        raise UserError(f"no user {username}")


def list_users(db_path: Path) -> list[dict]:
    return Store(db_path).list_users()


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None = None  # for the audit log, in English
    # The same for the person at the login form: a translation key ("login.wrong") and its values.
    problem: tuple[str, dict] | None = None


def lock_seconds(failures: int, free: int = FREE_FAILURES) -> int:
    if failures < free:
        return 0
    return min(30 * 2 ** (failures - free), MAX_LOCK_SECONDS)


WRONG = "wrong user name or password"
LOCKED = "too many failed logins: try again in {} s"


def _count(failures: int, locked_until: datetime | None, last: datetime | None, memory: timedelta,
           at: datetime) -> tuple[int, int]:
    """(failures still counted, seconds of lock left): failures are forgotten `memory` after the
    last one, unless a lock still runs. A count with no time of its last failure (a user's, kept
    before that time was) is forgotten too: an unknown name has no such old count, and the
    answers must not differ."""
    wait = int((locked_until - at).total_seconds()) + 1 if locked_until and locked_until > at else 0
    if not wait and (last is None or last < at - memory):
        failures = 0
    return failures, wait


def login(store: Store, username: str, password: str, client: str | None = None) -> LoginResult:
    """Check a password. Failures are counted per name and per client address (`client`, see
    web.context.client_address), each locking for a growing time after repeated ones. A name that
    is no user's is counted, answered and locked exactly as a user's, so the answers never tell
    which names exist; a locked name or address is refused before the password is checked."""
    name = username.strip()
    with store.transaction():  # the check and its counting are one step
        at = now()
        u = store.user(name)
        if u is not None:
            by_name = _count(u["failed_logins"], u["locked_until"], u["last_failed_login"], NAME_MEMORY, at)
        else:
            row = store.login_failures("name", name) or {}
            by_name = _count(row.get("failures", 0), row.get("locked_until"), row.get("last_failed_at"), NAME_MEMORY, at)
        row = (store.login_failures("address", client) if client else None) or {}
        by_address = _count(row.get("failures", 0), row.get("locked_until"), row.get("last_failed_at"),
                            ADDRESS_MEMORY, at)
        if by_name[1] or by_address[1]:
            wait = max(by_name[1], by_address[1])
            return LoginResult(None, LOCKED.format(wait), ("login.locked", {"s": wait}))
        # An unknown name is checked against a dummy hash: it takes as long as a wrong password.
        if not _verify(u["password_hash"] if u else _dummy_hash(), password) or u is None:
            failures = by_name[0] + 1
            wait = lock_seconds(failures)
            until = at + timedelta(seconds=wait) if wait else None
            if u is not None:
                store.record_login_failure(u["username"], failures, until, at)
            else:
                store.record_failed_login("name", name, failures, until, at, at - NAME_MEMORY)
            if client:
                address_wait = lock_seconds(by_address[0] + 1, FREE_ADDRESS_FAILURES)
                store.record_failed_login("address", client, by_address[0] + 1,
                                          at + timedelta(seconds=address_wait) if address_wait else None, at,
                                          at - ADDRESS_MEMORY)
                wait = max(wait, address_wait)
            return LoginResult(None, WRONG + (f"; locked for {wait} s" if wait else ""),
                               ("login.wrong_locked", {"s": wait}) if wait else ("login.wrong", {}))
        if u["disabled"]:
            return LoginResult(None, "this account is disabled", ("login.disabled", {}))
        store.clear_login_failures(u["username"])
        return LoginResult(User(u["username"], u["role"], u["session_epoch"]))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return HASHER.hash("not a password")


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


# --- cookies -------------------------------------------------------------------------------

def load_secret(path: Path) -> bytes:
    """The signing key, created once (mode 600) beside the database unless configured."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class Sessions:
    def __init__(self, secret: bytes, max_age_seconds: int):
        self.serializer = URLSafeTimedSerializer(secret, salt="callbrief-session")
        self.pre = URLSafeTimedSerializer(secret, salt="callbrief-login-form")
        self.flashes = URLSafeTimedSerializer(secret, salt="callbrief-flash")
        self.max_age = max_age_seconds

    def issue(self, user: User) -> tuple[str, str]:
        csrf = secrets.token_urlsafe(24)
        return self.serializer.dumps({"u": user.username, "e": user.session_epoch, "c": csrf}), csrf

    def read(self, cookie: str | None) -> dict | None:
        if not cookie:
            return None
        try:
            return self.serializer.loads(cookie, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None

    # A page's one-time message after a POST: a key, for one user and one page, signed.
    def flash(self, key: str, username: str, path: str) -> str:
        return self.flashes.dumps({"k": key, "u": username, "p": path})

    def read_flash(self, cookie: str | None, username: str, path: str, max_age: int) -> str | None:
        if not cookie:
            return None
        try:
            data = self.flashes.loads(cookie, max_age=max_age)
        except (BadSignature, SignatureExpired):
            return None
        return data.get("k") if data.get("u") == username and data.get("p") == path else None

    # The login form has no session yet: its CSRF token is a signed value in a short cookie.
    def login_token(self) -> str:
        return self.pre.dumps(secrets.token_urlsafe(16))

    def check_login_token(self, cookie: str | None, form_value: str | None) -> bool:
        if not cookie or not form_value or not hmac.compare_digest(cookie, form_value):
            return False
        try:
            self.pre.loads(cookie, max_age=3600)
            return True
        except (BadSignature, SignatureExpired):
            return False
