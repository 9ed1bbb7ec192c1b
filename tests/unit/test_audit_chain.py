"""The audit log is append-only and chained (pipeline/store/audit.py), on real DuckDB files: a
normal sequence of audited actions verifies, `callbrief audit verify` names the first row that
was edited, deleted or added outside the store, and a log from before the chain is chained."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.store import Store
from pipeline.store.connect import Database

ROOT = Path(__file__).resolve().parents[2]


def verify(db: Path, capsys) -> tuple[int, str]:
    from flows.cli import main

    code = main(["audit", "verify", "--db", str(db)])
    out = capsys.readouterr()
    return code, (out.out + out.err).strip()


def audited(db: Path, n: int = 6) -> Store:
    store = Store(db)
    actions = [("login", "hana"), ("view_briefing", "C1001"), ("view_call", "zh-1001-b"), ("play_audio", "zh-1001-b"),
               ("callback_done", "C1001"), ("logout", "hana")]
    for i in range(n):
        action, target = actions[i % len(actions)]
        store.audit("hana", "handler", action, target, f"detail {i} · 详情", "127.0.0.1")
    return store


def test_a_normal_sequence_of_audited_actions_verifies(tmp_path, capsys):
    db = tmp_path / "callbrief.duckdb"
    store = audited(db)
    rows = store.rows("SELECT id, hash FROM audit_log ORDER BY id")
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6] and all(re.fullmatch(r"[0-9a-f]{64}", r["hash"]) for r in rows)
    code, said = verify(db, capsys)
    assert code == 0 and said.startswith("audit log OK: 6 rows") and rows[-1]["hash"] in said
    store.audit(None, None, "login_failed", "nobody", "wrong user name or password", "10.0.0.9")
    assert verify(db, capsys)[1].startswith("audit log OK: 7 rows")


def test_an_empty_log_verifies_and_a_missing_database_is_said(tmp_path, capsys):
    db = tmp_path / "callbrief.duckdb"
    Store(db)
    assert verify(db, capsys) == (0, "audit log OK: 0 rows, chain verified")
    code, said = verify(tmp_path / "none.duckdb", capsys)
    assert code == 2 and "no database at" in said and not (tmp_path / "none.duckdb").exists()


@pytest.mark.parametrize("edit", [
    "UPDATE audit_log SET detail = 'nothing to see' WHERE id = 3",
    "UPDATE audit_log SET username = 'someone-else' WHERE id = 3",
    "UPDATE audit_log SET logged_at = logged_at + INTERVAL 1 SECOND WHERE id = 3",
    "UPDATE audit_log SET client = NULL WHERE id = 3",
])
def test_an_edited_row_breaks_the_chain_at_that_row(tmp_path, capsys, edit):
    db = tmp_path / "callbrief.duckdb"
    audited(db)
    Database(db).execute(edit)
    code, said = verify(db, capsys)
    assert code == 1 and said.startswith("callbrief: audit log BROKEN at row 3:") and "\n" not in said, said


def test_a_row_edited_with_its_hash_recomputed_breaks_the_next_row(tmp_path, capsys):
    from pipeline.store.audit import row_hash

    db = tmp_path / "callbrief.duckdb"
    store = audited(db)
    rows = store.rows("SELECT * FROM audit_log ORDER BY id")
    forged = {**rows[2], "detail": "nothing to see"}
    Database(db).execute("UPDATE audit_log SET detail = ?, hash = ? WHERE id = 3",
                         [forged["detail"], row_hash(rows[1]["hash"], forged)])
    code, said = verify(db, capsys)
    assert code == 1 and said.startswith("callbrief: audit log BROKEN at row 4:"), said


def test_a_deleted_row_breaks_the_chain_naming_it(tmp_path, capsys):
    db = tmp_path / "callbrief.duckdb"
    audited(db)
    Database(db).execute("DELETE FROM audit_log WHERE id = 2")
    code, said = verify(db, capsys)
    assert code == 1 and said.startswith("callbrief: audit log BROKEN at row 2: row 2 is missing (deleted)"), said


def test_rows_deleted_from_the_end_are_found_by_the_head(tmp_path, capsys):
    db = tmp_path / "callbrief.duckdb"
    audited(db)
    Database(db).execute("DELETE FROM audit_log WHERE id >= 5")
    code, said = verify(db, capsys)
    assert code == 1 and said.startswith("callbrief: audit log BROKEN at row 5: rows 5 to 6 are missing"), said


def test_a_row_added_outside_the_store_is_reported_and_never_chained(tmp_path, capsys):
    db = tmp_path / "callbrief.duckdb"
    audited(db)
    Database(db).execute("INSERT INTO audit_log (logged_at, username, action, target) "
                         "VALUES (now()::TIMESTAMP, 'mallory', 'login', 'mallory')")
    Store(db).audit("hana", "handler", "logout", "hana")  # a later write (and its migration) does not bless it
    code, said = verify(db, capsys)
    assert code == 1 and "added outside the store" in said and "'login'" in said, said
    assert Store(db).rows("SELECT count(*) AS n FROM audit_log WHERE hash IS NULL")[0]["n"] == 1


def test_a_log_written_before_the_chain_is_chained_in_order_on_first_open(tmp_path, capsys):
    """An existing database: audit_log as it was (7 columns, no id or hash) with rows in it."""
    db = tmp_path / "callbrief.duckdb"
    old = Database(db)
    old.execute("CREATE TABLE audit_log (logged_at TIMESTAMP NOT NULL, username VARCHAR, role VARCHAR, "
                "action VARCHAR NOT NULL, target VARCHAR, detail VARCHAR, client VARCHAR)")
    start = datetime(2026, 3, 1, 9, 0, 0, 123456)
    for i in (2, 0, 1):  # inserted out of time order
        old.execute("INSERT INTO audit_log VALUES (?, 'lee', 'lead', 'view_call', ?, '', '127.0.0.1')",
                    [start + timedelta(minutes=i), f"call-{i}"])
    code, said = verify(db, capsys)  # verify is the first open by this version: it chains, then checks
    assert (code, said[:22]) == (0, "audit log OK: 3 rows, ")
    store = Store(db)
    assert [(r["id"], r["target"]) for r in store.rows("SELECT id, target FROM audit_log ORDER BY id")] == \
        [(1, "call-0"), (2, "call-1"), (3, "call-2")]
    store.audit("lee", "lead", "logout", "lee")
    assert verify(db, capsys)[1].startswith("audit log OK: 4 rows")
    Database(db).execute("UPDATE audit_log SET target = 'call-9' WHERE id = 1")
    assert verify(db, capsys)[1].startswith("callbrief: audit log BROKEN at row 1:")


def test_writers_in_many_threads_keep_one_chain(tmp_path, capsys):
    db = tmp_path / "callbrief.duckdb"
    store = Store(db)

    def work(n):
        for i in range(10):
            store.audit(f"user{n}", "handler", "view_call", f"call-{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify(db, capsys)[1].startswith("audit log OK: 40 rows")


def test_only_the_store_appends_to_the_audit_log():
    """No code of the product updates or deletes audit rows; only pipeline/store/audit.py inserts
    them, and its one UPDATE chains a log written before the chain existed."""
    writes = re.compile(r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE|DROP\s+TABLE|ALTER\s+TABLE)\s+(IF\s+EXISTS\s+)?"
                        r"audit_(log|head)\b", re.I)
    found = {}
    for folder in ("pipeline", "flows", "web", "evaluation", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            hits = [m.group(0).split()[0].upper() for m in writes.finditer(path.read_text(encoding="utf-8"))]
            if hits:
                found[str(path.relative_to(ROOT))] = sorted(hits)
    assert found == {"pipeline/store/audit.py": ["DELETE", "INSERT", "INSERT", "INSERT", "UPDATE"]}, found
    source = (ROOT / "pipeline/store/audit.py").read_text(encoding="utf-8")
    assert "DELETE FROM audit_log" not in source and source.count("UPDATE audit_log") == 1
