"""The web app's users and its audit log (web.auth hashes passwords and signs sessions; this
only keeps the rows). Timestamps are naive UTC like every other the pipeline writes."""
from __future__ import annotations

from datetime import datetime

from pipeline.store.calls import utcnow


class UsersTable:
    """Mixed into `Store`: users and audit_log."""

    def user(self, username: str) -> dict | None:
        """Every column of a user's row, None for an unknown name."""
        found = self.rows("SELECT * FROM users WHERE username = ?", [username])
        return found[0] if found else None

    def user_session_state(self, username: str) -> tuple | None:
        """(role, disabled, session_epoch) of a user, None for an unknown name."""
        with self.reading() as conn:
            return conn.execute("SELECT role, disabled, session_epoch FROM users WHERE username = ?",
                                [username]).fetchone()

    def add_user(self, username: str, role: str, password_hash: str) -> bool:
        """False when the name is taken."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                return False
            conn.execute("INSERT INTO users (username, role, password_hash, created_at, password_changed_at) "
                         "VALUES (?, ?, ?, ?, ?)", [username, role, password_hash, utcnow(), utcnow()])
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
        return self.rows("SELECT username, role, disabled, failed_logins, locked_until, created_at FROM users "
                         "ORDER BY username")

    def end_user_sessions(self, username: str) -> None:
        self.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE username = ?", [username])

    def record_login_failure(self, username: str, failures: int, locked_until: datetime | None) -> None:
        self.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE username = ?",
                     [failures, locked_until, username])

    def clear_login_failures(self, username: str) -> None:
        self.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = ?", [username])

    def audit(self, username: str | None, role: str | None, action: str, target: str, detail: str = "",
              client: str | None = None) -> None:
        """One row of the audit log: who did what to which record, and from where."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [utcnow(), username, role, action, target, detail, client])
