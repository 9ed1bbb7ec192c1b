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

from pipeline.store import Store

HASHER = PasswordHasher()
MIN_PASSWORD = 10
FREE_FAILURES = 3  # then each failure doubles the wait: 30 s, 60 s, 2 min ... capped at 15 min
MAX_LOCK_SECONDS = 15 * 60
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


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: use at least {MIN_PASSWORD} characters")


def add_user(db_path: Path, username: str, role: str, password: str) -> None:
    if not USERNAME.match(username):
        raise UserError(f"bad user name {username!r}: 2-40 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    check_password_rules(password)
    if not Store(db_path).add_user(username, role, HASHER.hash(password)):
        raise UserError(f"user {username} exists (use `callbrief users passwd {username}`)")


def set_password(db_path: Path, username: str, password: str) -> None:
    check_password_rules(password)
    if not Store(db_path).set_password_hash(username, HASHER.hash(password)):
        raise UserError(f"no user {username}")


def set_disabled(db_path: Path, username: str, disabled: bool = True) -> None:
    if not Store(db_path).set_user_disabled(username, disabled):
        raise UserError(f"no user {username}")


def list_users(db_path: Path) -> list[dict]:
    return Store(db_path).list_users()


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None = None


def lock_seconds(failures: int) -> int:
    if failures < FREE_FAILURES:
        return 0
    return min(30 * 2 ** (failures - FREE_FAILURES), MAX_LOCK_SECONDS)


def login(store: Store, username: str, password: str) -> LoginResult:
    """Check a password; count failures and lock the name for a growing time after repeated ones."""
    generic = "wrong user name or password"
    with store.transaction():  # the check and its counting are one step
        u = store.user(username.strip())
        if u is None:
            _verify(_dummy_hash(), password)  # an unknown name takes as long as a wrong password
            return LoginResult(None, generic)
        if u["locked_until"] and u["locked_until"] > now():
            wait = int((u["locked_until"] - now()).total_seconds()) + 1
            return LoginResult(None, f"too many failed logins: try again in {wait} s")
        if not _verify(u["password_hash"], password):
            failures = u["failed_logins"] + 1
            wait = lock_seconds(failures)
            store.record_login_failure(u["username"], failures, now() + timedelta(seconds=wait) if wait else None)
            return LoginResult(None, generic + (f"; locked for {wait} s" if wait else ""))
        if u["disabled"]:
            return LoginResult(None, "this account is disabled")
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
