"""Where things are by default: the checkout's data folder when running from a source checkout
(where `make setup` puts the models), else the per-user data folder. Nothing here reads the
environment at import time."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def running_from_checkout() -> bool:
    """The package sits in a source checkout (pyproject.toml beside it), not in site-packages."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "pipeline").is_dir()


def data_dir() -> Path:
    if running_from_checkout():
        return PROJECT_ROOT / "data"
    # XDG base directory spec; HOME/XDG are read when a folder is needed, never at import.
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "callbrief"


def default_model_cache() -> Path:
    return data_dir() / "models"


# The embedded default of `make run` and the CLI: the sample calls into the checkout's database.
DEFAULT_DB = PROJECT_ROOT / "data" / "callbrief.duckdb"
DEFAULT_INPUT = PROJECT_ROOT / "data" / "samples"
