"""Secrets the app writes are never committed: git ignores them wherever the database lives in
the checkout, and the key file is readable by its owner only."""
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline.config.paths import DEFAULT_DB

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not shutil.which("git") or not (ROOT / ".git").exists(), reason="needs a git checkout")


def ignored(path: Path) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", str(path.relative_to(ROOT))], cwd=ROOT).returncode == 0


def test_the_web_signing_key_and_other_key_files_are_ignored(tmp_path):
    from web.auth import load_secret

    default = DEFAULT_DB.resolve().parent / "web-secret.key"  # where `callbrief web` creates it by default
    assert default.is_relative_to(ROOT) and ignored(default)
    for path in ("data/web-secret.key", "data/site-a/web-secret.key", "web-secret.key", "data/callbrief.key",
                 "config/tls.pem"):
        assert ignored(ROOT / path), path
    assert not ignored(ROOT / "web" / "auth.py")  # the check can fail
    key = tmp_path / "web-secret.key"
    assert len(load_secret(key)) == 64 and stat.S_IMODE(key.stat().st_mode) == 0o600
