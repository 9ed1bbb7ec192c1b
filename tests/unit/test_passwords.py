"""Which passwords may be set (web.passwords), and that every place a password is set applies it:
`callbrief users add` and `users passwd`, on a real DuckDB file."""
from __future__ import annotations

import io
import sys

import pytest

from pipeline.store import Store
from web.passwords import MIN_LENGTH, common_passwords, problem, sequence_runs

ACCEPTED = ["correct horse battery staple", "Tr0ub4dor&3xyz", "monkey-purple-42", "my dog eats 3 socks",
            "dragon-7392-8841", "quiet-harbour-lamp", "a-long-password", "handler-pass-1", "qa-pass-12345",
            "我的密码是蓝色的大海和天空"]


@pytest.mark.parametrize("password", ACCEPTED)
def test_long_uncommon_passwords_are_accepted(password):
    assert problem(password, "hana") is None


@pytest.mark.parametrize("password, why", [
    ("", "too short"), ("short-pass1", "too short"), ("x" * (MIN_LENGTH - 1), "too short"),
    ("aaaaaaaaaaaa", "repeated"), ("111111111111", "repeated"), ("abcabcabcabc", "repeated"),
    ("passwordpassword", "repeated"),
    ("hana", "too short"), ("hana12345678", "user name"), ("HANA!!2024!!", "user name"), ("#H@na#0000000", "user name"),
    ("123456789012", "sequence"), ("987654321098", "sequence"), ("qwertyuiop[]", "sequence"),
    ("qwertyasdfgh", "sequence"), ("1qaz2wsx3edc", "sequence"), ("zaq12wsxcde3", "sequence"),
    ("abcdef123456", "sequence"), ("!@#$%^&*()_+", "sequence"), ("abcdefghijkl", "sequence"),
    ("Password1234", "common"), ("P@ssw0rd2024", "common"), ("iloveyou2024", "common"),
    ("Summer2024!!", "common"), ("football1234", "common"), ("letmein12345", "common"),
    ("sonyericsson", "common"), ("1234qwerty!!", "common"),
])
def test_weak_passwords_are_refused_in_one_line(password, why):
    said = problem(password, "hana")
    assert said is not None and why in said and "\n" not in said, (password, said)


def test_the_user_name_is_only_refused_for_that_user():
    assert problem("hana12345678", "hana") is not None
    assert problem("hana-loves-blue-tea", "hana") is None  # the name in a longer phrase is fine
    assert problem("neo-7777-matrix", "hana") is None


def test_the_shipped_list_is_the_head_of_a_real_leaked_password_list():
    common = common_passwords()
    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "iloveyou", "dragon", "trustno1"} <= common
    assert all(p == p.lower() and p.strip() == p for p in common)


def test_sequence_runs():
    assert sequence_runs("qwerty123456") == ["qwerty", "123456"]
    assert sequence_runs("1qaz2wsx") == ["1qaz2wsx"]
    assert len(sequence_runs("correct horse")) > 3


def _users(db, *argv, stdin="") -> int:
    from flows.cli import main

    old = sys.stdin
    sys.stdin = io.StringIO(stdin + "\n")
    try:
        return main(["users", *argv, "--db", str(db), "--password-stdin"])
    finally:
        sys.stdin = old


def _hash_of(db, name):
    found = Store(db).rows("SELECT password_hash FROM users WHERE username = ?", [name])
    return found[0]["password_hash"] if found else None


def test_the_cli_refuses_weak_passwords_with_one_line_and_sets_nothing(tmp_path, capsys):
    db = tmp_path / "callbrief.duckdb"
    Store(db)  # an existing database
    for password, why in (("Password1234", "common passwords"), ("anna12345678", "user name"),
                          ("qwertyuiop12", "common"), ("123456789012", "sequence"), ("too-short", "at least 12")):
        assert _users(db, "add", "anna", "--role", "handler", stdin=password) == 1, password
        err = capsys.readouterr().err
        assert err.startswith("callbrief: ") and why in err and err.count("\n") == 1, err
    assert _hash_of(db, "anna") is None  # no user was made
    assert _users(db, "add", "anna", "--role", "handler", stdin="blue-kettle-on-the-hob") == 0
    before = _hash_of(db, "anna")
    assert _users(db, "passwd", "anna", stdin="iloveyou2024") == 1
    assert "common passwords" in capsys.readouterr().err
    assert _hash_of(db, "anna") == before  # the old password stays
    assert _users(db, "passwd", "anna", stdin="green-kettle-on-the-hob") == 0
    assert _hash_of(db, "anna") != before
