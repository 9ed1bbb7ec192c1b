"""Call ids: which are accepted, how one is derived for a recording without one, and a safe file name.

A call id goes into file names (plots) and tables, so it is checked before it touches either. A
derived id is a pure function of the recording's path inside the input folder and its contents:
the same recording keeps its id on every rerun, two recordings never share one (`day1/rec001.wav`
and `day2/rec001.wav` differ by path), and a new file cannot move an id to another recording.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import PurePosixPath

MAX_CALL_ID = 64
# ASCII letters and digits, then also . _ - : safe in any file system, URL and shell, and it
# cannot spell "..", a hidden file or an option.
_CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_MAX_SLUG = 40  # readable part of a derived id; the rest is a hash


def call_id_problem(call_id: str) -> str | None:
    """Why `call_id` is not acceptable, or None when it is."""
    if len(call_id) > MAX_CALL_ID:
        return f"{call_id[:20]!r}... is longer than {MAX_CALL_ID} characters"
    if not _CALL_ID.fullmatch(call_id):
        return f"{call_id!r} is not a call id: use ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"
    return None


def readable_slug(text: str) -> str:
    """ASCII letters, digits, '.', '_' and '-' that still read like `text`: Chinese as pinyin words
    (投诉录音 -> tousu-luyin), accents dropped (é -> e), full-width forms folded (１ -> 1)."""
    if _HAN.search(text):
        import jieba  # heavy: its dictionary loads on first use
        from pypinyin import lazy_pinyin  # heavy: its dictionaries load on first use

        text = "".join(f"-{''.join(lazy_pinyin(tok))}-" if _HAN.search(tok) else tok for tok in jieba.lcut(text))
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    text = re.sub(r"[._-]*-[._-]*", "-", text)  # a word break wins over punctuation around it
    return re.sub(r"_+", "_", text).strip("._-")


def _shorten(slug: str) -> str:
    return slug[:_MAX_SLUG].rstrip("._-")


def derived_call_id(relative_path: str, sha256: str) -> str:
    """The id of a recording with no manifest call_id: its path inside the input folder made readable,
    plus 8 hex digits of a hash over that path and the contents."""
    parts = relative_path.split("/")
    if relative_path.startswith("/") or "" in parts or "." in parts:  # not in normal form: let pathlib tidy it
        path = PurePosixPath(relative_path)
        relative_path, parts = path.as_posix(), list(path.with_suffix("").parts)
    else:  # the common case, without building a path (planning lists 10,000s): drop the suffix as pathlib does
        dot = parts[-1].rfind(".")
        parts[-1] = parts[-1][:dot] if 0 < dot < len(parts[-1]) - 1 else parts[-1]
    slug = "-".join(filter(None, (readable_slug(part) for part in parts)))
    digest = hashlib.sha256(f"{relative_path}\n{sha256}".encode()).hexdigest()[:8]
    return f"{_shorten(slug) or 'rec'}-{digest}"


def safe_name(call_id: object) -> str:
    """A file name for a call id: the id itself when it is a valid one, else a readable slug plus a
    hash of the id (so two different ids never share a file, and '../x' cannot leave a folder)."""
    text = str(call_id)
    if call_id_problem(text) is None:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_shorten(readable_slug(text)) or 'call'}-{digest}"
