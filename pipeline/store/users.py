"""The web app's users and their failed logins (web.auth hashes passwords and signs sessions;
this only keeps the rows; the audit log is pipeline/store/audit.py). Timestamps are naive UTC like every other the pipeline writes."""
from __future__ import annotations

from datetime import datetime

from pipeline.store.calls import utcnow


class UsersTable:
    """Mixed into `Store`: users and login_failures."""

    def user(self, username: str) -> dict | None:
        """Every column of a user's row, None for an unknown name."""
        found = self.rows("SELECT * FROM users WHERE username = ?", [username])
        return found[0] if found else None

    def user_session_state(self, username: str) -> tuple | None:
        """(role, disabled, session_epoch, lang) of a user, None for an unknown name."""
        with self.reading() as conn:
            return conn.execute("SELECT role, disabled, session_epoch, coalesce(lang, 'zh') FROM users WHERE username = ?",
                                [username]).fetchone()

    def add_user(self, username: str, role: str, password_hash: str, lang: str = "zh") -> bool:
        """False when the name is taken."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                return False
            conn.execute("INSERT INTO users (username, role, password_hash, created_at, password_changed_at, lang) "
                         "VALUES (?, ?, ?, ?, ?, ?)", [username, role, password_hash, utcnow(), utcnow(), lang])
        return True

    def set_user_lang(self, username: str, lang: str) -> bool:
        """The language the user reads the web app in; False for an unknown name."""
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                return False
            conn.execute("UPDATE users SET lang = ? WHERE username = ?", [lang, username])
        return True

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        """A new password ends every session of the user and clears a lock; False for an unknown name."""
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                return False
            conn.execute("UPDATE users SET password_hash = ?, password_changed_at = ?, failed_logins = 0, "
                         "locked_until = NULL, session_epoch = session_epoch + 1 WHERE username = ?",
                         [password_hash, utcnow(), username])
        return True

    def set_user_disabled(self, username: str, disabled: bool) -> bool:
        """Disabling ends every session of the user; False for an unknown name."""
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                return False
            conn.execute("UPDATE users SET disabled = ?, session_epoch = session_epoch + 1 WHERE username = ?",
                         [disabled, username])
        return True

    def list_users(self) -> list[dict]:
        return self.rows("SELECT username, role, coalesce(lang, 'zh') AS lang, disabled, failed_logins, locked_until, "
                         "created_at FROM users ORDER BY username")

    def end_user_sessions(self, username: str) -> None:
        self.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE username = ?", [username])

    def record_login_failure(self, username: str, failures: int, locked_until: datetime | None,
                             at: datetime | None = None) -> None:
        self.execute("UPDATE users SET failed_logins = ?, locked_until = ?, last_failed_login = ? WHERE username = ?",
                     [failures, locked_until, at or utcnow(), username])

    def clear_login_failures(self, username: str) -> None:
        self.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = ?", [username])

    def login_failures(self, scope: str, key: str) -> dict | None:
        """The failed-login count of a client address (scope 'address') or of a name that is no
        user's (scope 'name'): failures, locked_until, last_failed_at; None when there is none."""
        found = self.rows("SELECT failures, locked_until, last_failed_at FROM login_failures WHERE scope = ? AND key = ?",
                          [scope, key])
        return found[0] if found else None

    def record_failed_login(self, scope: str, key: str, failures: int, locked_until: datetime | None, at: datetime,
                            forget_before: datetime) -> None:
        """Count a failed login against an address or an unknown name; counts whose last failure
        was before `forget_before` and whose lock has ended are dropped (they would count as 0).
        Runs inside the caller's transaction (web.auth.login counts in the one that checked)."""
        with self.session() as conn:
            conn.execute("DELETE FROM login_failures WHERE scope = ? AND last_failed_at < ? "
                         "AND (locked_until IS NULL OR locked_until < ?)", [scope, forget_before, at])
            conn.execute("INSERT INTO login_failures VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET "
                         "failures = excluded.failures, locked_until = excluded.locked_until, "
                         "last_failed_at = excluded.last_failed_at", [scope, key, failures, locked_until, at])
