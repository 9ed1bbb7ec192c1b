"""One settings object, built once at an entry point (CLI, flow, web app) and passed down.

Sources, later ones winning: the defaults below, a TOML file (`--settings`, or the path in
CALLBRIEF_SETTINGS, or `callbrief.toml` in the working folder), then CALLBRIEF_<FIELD>
environment variables. Nothing in `pipeline` reads the environment at import time.
The centre's policy (score levels, flag sets, weights, trend rules, callback target, default
time zone) is a data file of its own (pipeline/config/policy.py), named by `policy_file` and loaded here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.config import keys
from pipeline.config.paths import default_model_cache
from pipeline.config.policy import Policy, PolicyError, default_policy, load_policy
from pipeline.version import __version__

ENV_PREFIX = "CALLBRIEF_"


EXPORT_FILES = ("encrypted", "plain", "none")
RETENTION_FIELDS = ("retain_audio_paths_days", "retain_raw_text_days", "retain_redacted_audio_days")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    # The centre's policy file (a bank's own copy of pipeline/data/policy.toml); empty: the packaged one.
    policy_file: str = ""
    # The centre's time zone: manifest times without a zone are read in it, and every time a
    # handler sees is shown in it. Empty: the policy's.
    timezone: str = ""
    callback_target_minutes: int = 0  # a complaint is called back within this; 0: the policy's
    # Alerts (pipeline/outputs/alerts.py): a channel is on when it is configured.
    alert_webhook_url: str = ""  # JSON POST of each alert
    smtp_host: str = ""  # e-mail of each alert
    smtp_port: int = 25
    smtp_from: str = "callbrief@localhost"
    smtp_to: str = ""  # comma-separated recipients
    alert_retry_seconds: float = 30.0  # first retry after a failed delivery; doubles, capped at an hour
    # Continuous intake (pipeline/run/watch.py, flows/intake.py).
    intake_dir: str = ""  # the folder recordings arrive in
    intake_interval_seconds: float = 30.0  # between passes over it
    intake_settle_seconds: float = 5.0  # a file unchanged this long is complete
    # The web app (`callbrief web`): local only unless configured; the cookie-signing key is
    # created beside the database when no file is named.
    web_host: str = "127.0.0.1"
    web_port: int = 8765
    web_secret_file: str = ""
    web_session_minutes: int = 480  # one shift; then log in again
    web_cookie_secure: bool = False  # set true when served over HTTPS (behind a proxy)
    # Reverse proxies in front of the app (addresses or networks, comma-separated): from them the
    # client's address is read from X-Forwarded-For (web.context.client_address); from anyone else
    # that header is ignored. Empty: the connecting address is the client's.
    web_trusted_proxies: str = ""
    # Audio: people play a copy with every masked number replaced by a tone, kept in this folder
    # (empty: redacted/ beside the database). The original recording is played only to these
    # roles (comma-separated; empty: nobody), each play audited with the reason the user types.
    redacted_audio_dir: str = ""
    original_audio_roles: str = ""
    # Models (pipeline/speech/weights.py, pipeline/engines.py). Empty cache: the checkout's data/models
    # when running from one, else the per-user data folder.
    model_cache: str = ""
    allow_download: bool = False  # fetch models missing offline from the hub (needs internet)
    # Optional pyannote.audio diarization pipeline for mono calls (local path or hub name); its
    # hub token, when empty, is HF_TOKEN (huggingface's own variable), read with the settings.
    pyannote_pipeline: str = ""
    pyannote_token: str = ""
    # The database is encrypted at rest (pipeline/config/keys.py): the key file (empty: the user's
    # config folder, ~/.config/callbrief/db.key), or the key itself in CALLBRIEF_DB_KEY.
    encrypt_database: bool = True
    db_key_file: str = ""
    # Exported files (QA samples' CSV and Parquet): "encrypted" (sealed with the database key:
    # `callbrief keys decrypt` opens one), "plain", or "none" (not written at all). Empty:
    # encrypted when the database is.
    export_files: str = ""
    # Retention (pipeline/run/retention.py: `callbrief purge` and the nightly run's last step): how
    # many days after a call started (calls.started_at; processed_at when it has none) callbrief
    # keeps its raw data. Each a whole number of days, 1 or more: a bank keeps these for a set
    # period and must delete them after, so there is no "forever" (set a long period instead).
    # See docs/privacy.md#retention for the defaults' reasons.
    retain_audio_paths_days: int = 90  # where the original recording is (calls.path, call_paths)
    retain_raw_text_days: int = 90  # words, turns.text, corrections (turns.redacted_text stays)
    retain_redacted_audio_days: int = 365  # the redacted copies written beside the database
    # Also delete the original recording files when their paths are forgotten. Off by default:
    # the recordings are the bank's (its archive keeps them for its own period), not callbrief's.
    purge_recording_files: bool = False
    # Loaded from policy_file by load_settings; not itself a setting.
    policy: Policy = field(default_factory=default_policy, repr=False, compare=False)

    def __post_init__(self):
        for name in RETENTION_FIELDS:
            days = getattr(self, name)
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise SettingsError(f"setting {name}: {days!r} is not a retention period (a whole number of days, "
                                    "1 or more)")
        # The policy's time zone and callback target apply unless the settings name others.
        if not self.timezone:
            object.__setattr__(self, "timezone", self.policy.timezone)
        if not self.export_files:
            object.__setattr__(self, "export_files", "encrypted" if self.encrypt_database else "plain")
        if not self.callback_target_minutes:
            object.__setattr__(self, "callback_target_minutes", self.policy.callback_target_minutes)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def model_cache_dir(self) -> Path:
        return Path(self.model_cache).expanduser() if self.model_cache else default_model_cache()


def _coerce(name: str, kind, value):
    kind = kind if isinstance(kind, type) else {"int": int, "float": float, "bool": bool, "str": str}.get(kind, str)
    try:
        if kind is bool and isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        if kind is int and (isinstance(value, bool) or isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)  # int(true) is 1, int(90.5) is 90: neither is what was meant
        return kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name}: {value!r} is not a {kind.__name__}") from None


def load_settings(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict = {}
    path = path or environ.get(ENV_PREFIX + "SETTINGS") or (Path("callbrief.toml") if Path("callbrief.toml").exists() else None)
    known = {f.name: f.type for f in fields(Settings) if f.name != "policy"}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc}") from None
        for key, value in data.items():
            if key not in known:
                raise SettingsError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
            values[key] = _coerce(key, known[key], value)
    for name, kind in known.items():
        if ENV_PREFIX + name.upper() in environ:
            values[name] = _coerce(name, kind, environ[ENV_PREFIX + name.upper()])
    if "pyannote_token" not in values and environ.get("HF_TOKEN"):
        values["pyannote_token"] = environ["HF_TOKEN"]
    try:
        policy = load_policy(values.get("policy_file"))
    except PolicyError as exc:
        raise SettingsError(str(exc)) from None
    settings = Settings(policy=policy, **values)
    try:
        settings.tz
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"unknown time zone {settings.timezone!r} (use an IANA name such as Asia/Shanghai)") from None
    if settings.export_files not in EXPORT_FILES:
        raise SettingsError(f"setting export_files: {settings.export_files!r} is not one of {', '.join(EXPORT_FILES)}")
    if settings.export_files == "encrypted" and not settings.encrypt_database:
        raise SettingsError("setting export_files = \"encrypted\" needs the database key (encrypt_database = true); "
                            "choose \"plain\" or \"none\"")
    if environ is os.environ:  # the process's own settings (not a test's or a caller's what-if)
        keys.configure(settings.encrypt_database, settings.db_key_file)  # every store this process opens
    return settings


# Data files read only after a call's rows are stored (briefings, alerts, QA are rebuilt from
# the rows): changing them must not reprocess every call.
READ_AFTER_STORING = frozenset({"alert_rules.json", "qa_scorecard.json", "translations.json", "facts_lexicon.json",
                                # the policy: its part that changes rows is passed as Policy.results_part()
                                "policy.toml"})


def results_fingerprint(*parts) -> str:
    """A short hash of everything that changes what a call's rows contain: the pipeline version,
    the given settings objects (engine spec, transcription options, Settings...) and every data
    file the stages read (lexicons, vocabularies, rules, scorecard). Stored with each call and
    part of the skip key, so changing a beam size, a vocabulary or a threshold reprocesses."""

    digest = hashlib.sha256(__version__.encode())
    for part in parts:
        value = dataclasses.asdict(part) if dataclasses.is_dataclass(part) else part
        digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    data = resources.files("pipeline").joinpath("data")
    for entry in sorted(data.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name not in READ_AFTER_STORING:
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()[:16]
