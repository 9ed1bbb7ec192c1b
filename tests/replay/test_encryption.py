"""The database encrypted at rest (issue 24): what is on disk, the key's errors, the one-command
migration of a plain database, and sealed exports. Real DuckDB files, the real CLI in processes."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import keys
from pipeline.store import Store, StoreError
from tests.batches import CLI, ENV, ROOT
from tests.dbfile import query

CARD, PHONE = "4111111111111111", "13812345678"


def on_disk(db: Path) -> bytes:
    """Every byte DuckDB keeps for the database (the file and its log, when there is one)."""
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + ".wal")) if p.exists())


def planted(db: Path) -> Path:
    with Store(db) as store:
        store.insert_rows("turns", [{"call_id": "k1", "seq": 0, "text": f"my card is {CARD}, phone {PHONE}",
                                     "redacted_text": "my card is [CARD], phone [PHONE]"}])
    return db


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), cwd=ROOT, env=env or ENV, capture_output=True, text=True, timeout=120)


def test_a_database_is_encrypted_by_default_and_reads_back_with_its_key(tmp_path):
    db = planted(tmp_path / "calls.duckdb")
    assert query(db, "SELECT text FROM turns") == [(f"my card is {CARD}, phone {PHONE}",)]
    data = on_disk(db)
    assert len(data) > 100_000 and CARD.encode() not in data and PHONE.encode() not in data
    assert b"my card is" not in data and b"turns" not in data  # not the text, not even the schema


def test_without_encryption_the_same_rows_are_readable_on_disk(tmp_path):
    """The check above can fail: the plain file holds the number in clear."""
    db = tmp_path / "plain.duckdb"
    made = subprocess.run([sys.executable, "-c", f"from tests.replay.test_encryption import planted; "
                           f"planted(__import__('pathlib').Path({str(db)!r}))"],
                          cwd=ROOT, env=ENV | {keys.ENCRYPT_ENV: "false"}, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert CARD.encode() in on_disk(db)


def test_a_wrong_or_missing_key_is_one_line_and_changes_nothing(tmp_path):
    db = planted(tmp_path / "calls.duckdb")
    before = db.read_bytes()
    wrong = cli("keys", "show", "--db", str(db), env=ENV | {keys.KEY_ENV: "0" * 64})
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert "does not open the database" in wrong.stderr and keys.KEY_ENV in wrong.stderr
    missing = cli("run", "--input", str(tmp_path), "--db", str(db),
                  env={k: v for k, v in ENV.items() if k != keys.KEY_FILE_ENV} | {"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert missing.returncode == 2 and "no database key" in missing.stderr and "callbrief keys init" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    off = cli("keys", "show", "--db", str(db), env=ENV | {keys.ENCRYPT_ENV: "false"})
    assert off.returncode == 2 and "is encrypted and no key is set" in off.stderr
    assert db.read_bytes() == before
    assert query(db, "SELECT count(*) FROM turns") == [(1,)]


def test_a_key_file_others_can_read_is_refused(tmp_path):
    path, made = keys.init_key(tmp_path / "k" / "db.key")
    assert made and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    os.chmod(path, 0o644)
    done = cli("keys", "show", "--db", str(tmp_path / "x.duckdb"), env=ENV | {keys.KEY_FILE_ENV: str(path)})
    assert done.returncode == 1 and f"chmod 600 {path}" in done.stderr


def test_keys_init_never_puts_the_key_beside_the_data_or_the_code(tmp_path):
    for inside in (ROOT / "db.key", ROOT / "data" / "k" / "db.key"):
        with pytest.raises(keys.KeyProblem, match="would be copied with the data or the code"):
            keys.init_key(inside)
        assert not inside.exists()
    with pytest.raises(keys.KeyProblem, match="would be copied"):
        keys.init_key(tmp_path / "db" / "k.key", db_folders=(tmp_path / "db",))
    path, made = keys.init_key(tmp_path / "cfg" / "db.key")
    key = path.read_text()
    with pytest.raises(keys.KeyProblem, match="exists already"):
        keys.init_key(path)
    assert keys.init_key(path, if_missing=True) == (path, False) and path.read_text() == key
    again = cli("keys", "init", "--if-missing", env=ENV | {keys.KEY_FILE_ENV: str(path)})
    assert again.returncode == 0 and "already" in again.stdout and path.read_text() == key


def test_a_truncated_encrypted_file_is_called_damaged(tmp_path):
    db = planted(tmp_path / "calls.duckdb")
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(db.read_bytes()[:3000])
    with pytest.raises(StoreError, match=r"is damaged \(cut short or not a database\): restore it from a backup"):
        query(cut, "SELECT 1")


def test_encrypt_db_migrates_a_plain_database_and_loses_nothing(tmp_path, replayed):
    """A plain database (the replayed sample calls plus a planted card number, copied out with
    DuckDB alone) encrypted by one command: every table keeps its rows, the number is no longer
    on disk, the plain file is gone."""
    plain = tmp_path / "calls.duckdb"
    made = subprocess.run([sys.executable, "-c", (
        "import sys; from pipeline.store.connect import offline_instance\n"
        "c = offline_instance()\n"
        "c.execute(\"ATTACH '%s' AS enc (ENCRYPTION_KEY ?, READ_ONLY)\", [open(sys.argv[1]).read().strip()])\n"
        "c.execute(\"ATTACH '%s' AS plain\")\n"
        "c.execute('COPY FROM DATABASE enc TO plain')\n"
        "c.execute(\"INSERT INTO plain.turns (call_id, seq, text) VALUES ('k1', 0, 'card %s')\")\n"
        % (replayed, plain, CARD)), os.environ[keys.KEY_FILE_ENV]], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert CARD.encode() in on_disk(plain)
    tables = [t for (t,) in query(replayed, "SELECT table_name FROM duckdb_tables() ORDER BY 1")]
    counts = {t: query(replayed, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}
    counts["turns"] += 1
    assert len(tables) > 10 and counts["words"] > 100
    refused = cli("run", "--input", str(tmp_path / "none"), "--db", str(plain))
    assert refused.returncode == 2 and "is not encrypted: run `callbrief keys encrypt-db" in refused.stderr

    done = cli("keys", "encrypt-db", "--db", str(plain))
    assert done.returncode == 0 and "the same counts as before" in done.stdout, done.stderr
    assert {t: query(plain, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables} == counts
    assert CARD.encode() not in on_disk(plain)
    assert not plain.with_name(plain.name + ".plain").exists() and not plain.with_name(plain.name + ".encrypting").exists()
    again = cli("keys", "encrypt-db", "--db", str(plain))
    assert again.returncode == 2 and "is encrypted already" in again.stderr


def test_exports_are_sealed_with_the_database_key(tmp_path):
    from pipeline.outputs.qa import QAError, _write

    sealed = _write(tmp_path / "s.csv", f"call,card\nk1,{CARD}\n".encode(), "encrypted")
    assert sealed.name == "s.csv.enc" and CARD.encode() not in sealed.read_bytes()
    assert keys.unseal(sealed.read_bytes()) == f"call,card\nk1,{CARD}\n".encode()
    opened = cli("keys", "decrypt", str(sealed))
    assert opened.returncode == 0 and (tmp_path / "s.csv").read_text() == f"call,card\nk1,{CARD}\n"
    cut = tmp_path / "cut.csv.enc"
    cut.write_bytes(sealed.read_bytes()[:-5])
    bad = cli("keys", "decrypt", str(cut), "--output", str(tmp_path / "cut.csv"))
    assert bad.returncode == 1 and "does not open with this database key" in bad.stderr
    assert not (tmp_path / "cut.csv").exists()
    other = tmp_path / "other.key"
    shutil.copy(os.environ[keys.KEY_FILE_ENV], other)
    other.write_text("f" * 64)
    os.chmod(other, 0o600)
    wrong = cli("keys", "decrypt", str(sealed), "--output", str(tmp_path / "w.csv"), env=ENV | {keys.KEY_FILE_ENV: str(other)})
    assert wrong.returncode == 1 and "does not open" in wrong.stderr
    assert _write(tmp_path / "p.csv", b"a\n1\n", "plain").read_bytes() == b"a\n1\n"
    with pytest.raises(QAError, match="exports are off"):
        from pipeline.outputs.qa import export_sample
        export_sample(Store(tmp_path / "e.duckdb"), "s1", tmp_path, files="none")


def test_spill_files_of_a_big_query_are_encrypted_too():
    """DuckDB writes spill files in plain unless told: the one instance says so."""
    from pipeline.store.connect import offline_instance

    assert offline_instance().execute("SELECT current_setting('temp_file_encryption')").fetchone()[0] is True
