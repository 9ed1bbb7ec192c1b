"""The centre's policy as one data file (pipeline/data/policy.toml, or a bank's own copy named
by `Settings.policy_file`): score levels, flag sets, escalation weights, trend rules, the
callback target, the default time zone and the lexicon file. Loaded and validated once at the
entry point (with the settings) and passed down; nothing reads it at import time."""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pipeline.config.datafiles import parse_vocabulary
from pipeline.records import Flag

PACKAGED = "policy.toml"
VOCABULARY = "vocabulary_zh.tsv"  # the packaged Mandarin domain vocabulary
VOICE_FEATURES = ("z_pitch", "z_loudness", "z_tilt", "z_rate")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class ScoreLevels:
    """Escalation score levels (0-100), each with one meaning."""
    complaint: float  # a call at or above counts as a complaint call
    review: float  # QA's high-escalation stratum
    urgent: float  # the call's outcome is "escalated"; "high escalation" on the dashboard


@dataclass(frozen=True)
class ScorerWeights:
    voice_weight: float
    words_weight: float
    interruption_points: float
    repeat_points: float
    calm_sd: float
    full_sd: float
    voice_features: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class TrendRule:
    call_change: float
    call_level: float
    across_calls_change: float


@dataclass(frozen=True)
class Policy:
    timezone: str
    callback_target_minutes: int
    levels: ScoreLevels
    reported_flags: tuple[Flag, ...]
    threat_flags: tuple[Flag, ...]
    urgent_flags: tuple[Flag, ...]
    scorer: ScorerWeights
    trend: TrendRule
    escalation_lexicon: str  # the lexicon's text (not its name: a copy elsewhere hashes the same)
    vocabulary: str = ""  # the Mandarin domain vocabulary's text (correction targets, hotlines); "": packaged
    source: str = ""  # where it was read from, for messages
    qa_review_days: int = 7  # a call drawn for QA is reviewed within this; later it is overdue (dashboard)

    def results_part(self) -> dict:
        """What goes into a call's stored rows (escalation, flags, trend, outcome): part of the
        results fingerprint. Levels and targets read after storing (briefings, QA, dashboard)
        are not, so changing them does not reprocess calls."""
        return {"reported_flags": list(self.reported_flags), "urgent_flags": list(self.urgent_flags),
                "urgent": self.levels.urgent, "scorer": asdict(self.scorer),
                "call_trend": [self.trend.call_change, self.trend.call_level],
                "lexicon": hashlib.sha256(self.escalation_lexicon.encode()).hexdigest(),
                "vocabulary": hashlib.sha256(self.vocabulary.encode()).hexdigest()}

    def results_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.results_part(), sort_keys=True).encode()).hexdigest()[:16]


def _section(data: dict, name: str, where: str) -> dict:
    value = data.get(name)
    if value is None:
        raise PolicyError(f"{where}: missing section [{name}]")
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: {name} must be a section ([{name}] with keys), got {value!r}")
    return value


def _numbers(section: dict, cls, where: str, name: str, low: float = 0.0, high: float | None = None) -> dict:
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r} in [{name}] (known: {', '.join(known)})")
    out = {}
    for key in known:
        if key == "voice_features":
            continue
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PolicyError(f"{where}: [{name}] {key} must be a number, got {value!r}")
        if value < low or (high is not None and value > high):
            raise PolicyError(f"{where}: [{name}] {key} = {value} is outside {low:g}-{high if high is not None else 'any':}")
        out[key] = float(value)
    return out


def _flags(section: dict, key: str, where: str) -> tuple[Flag, ...]:
    values = section.get(key)
    if not isinstance(values, list):
        raise PolicyError(f"{where}: [flags] {key} must be a list of flag names")
    try:
        return tuple(Flag(v) for v in values)
    except ValueError as exc:
        raise PolicyError(f"{where}: [flags] {key}: {exc} (known: {', '.join(Flag)})") from None


def _read_data_file(name: str, folder: Path | None, where: str) -> str:
    """A data file named in the policy: a path (relative to the policy file's folder) or a
    file in pipeline/data/."""
    candidates = [Path(name)] if Path(name).is_absolute() else ([folder / name] if folder else [])
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    packaged = resources.files("pipeline").joinpath("data", name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    raise PolicyError(f"{where}: data file {name!r} not found (beside the policy file or in pipeline/data)")


def parse_policy(text: str, where: str = PACKAGED, folder: Path | None = None) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"cannot read policy file {where}: {exc}") from None
    known = {"timezone", "callback_target_minutes", "qa_review_days", "levels", "flags", "escalation", "trend", "files"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PolicyError(f"{where}: unknown policy key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    levels = ScoreLevels(**_numbers(_section(data, "levels", where), ScoreLevels, where, "levels", 0, 100))
    flags = _section(data, "flags", where)
    esc = _section(data, "escalation", where)
    features = esc.get("voice_features")
    if not isinstance(features, dict) or set(features) - set(VOICE_FEATURES) or not features:
        raise PolicyError(f"{where}: [escalation] voice_features must weigh some of {', '.join(VOICE_FEATURES)}")
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in features.values()):
        raise PolicyError(f"{where}: [escalation] voice_features weights must be numbers >= 0")
    scorer = ScorerWeights(**_numbers(esc, ScorerWeights, where, "escalation"),
                           voice_features=tuple((k, float(features[k])) for k in VOICE_FEATURES if k in features))
    if scorer.full_sd <= scorer.calm_sd:
        raise PolicyError(f"{where}: [escalation] full_sd must be above calm_sd")
    trend = TrendRule(**_numbers(_section(data, "trend", where), TrendRule, where, "trend", 0, 100))
    files = _section(data, "files", where)
    if set(files) - {"escalation_lexicon", "vocabulary"} or not isinstance(files.get("escalation_lexicon"), str) \
            or not isinstance(files.get("vocabulary", ""), str):
        raise PolicyError(f"{where}: [files] names escalation_lexicon and, optionally, vocabulary "
                          "(file names or paths) and nothing else")
    target = data.get("callback_target_minutes")
    if isinstance(target, bool) or not isinstance(target, int) or target <= 0:
        raise PolicyError(f"{where}: callback_target_minutes must be a whole number of minutes above 0, got {target!r}")
    review_days = data.get("qa_review_days", 7)  # optional: a policy copied before it existed still reads
    if isinstance(review_days, bool) or not isinstance(review_days, int) or review_days <= 0:
        raise PolicyError(f"{where}: qa_review_days must be a whole number of days above 0, got {review_days!r}")
    zone = data.get("timezone")
    if not isinstance(zone, str) or not zone:
        raise PolicyError(f"{where}: timezone must name an IANA zone such as Asia/Shanghai")
    return Policy(timezone=zone, callback_target_minutes=target, levels=levels,
                  reported_flags=_flags(flags, "reported", where), threat_flags=_flags(flags, "threats", where),
                  urgent_flags=_flags(flags, "urgent", where), scorer=scorer, trend=trend,
                  escalation_lexicon=_read_data_file(files["escalation_lexicon"], folder, where),
                  vocabulary=_vocabulary(files.get("vocabulary", VOCABULARY), folder, where), source=where,
                  qa_review_days=review_days)


def _vocabulary(name: str, folder: Path | None, where: str) -> str:
    """A vocabulary file's text, checked now (a bad row is the policy's one-line error, not a
    failed call later)."""
    text = _read_data_file(name, folder, where)
    try:
        parse_vocabulary(text)
    except ValueError as exc:
        raise PolicyError(f"{where}: {name}: {exc}") from None
    return text


def load_policy(path: Path | str | None = None) -> Policy:
    """The policy in `path`, or the packaged one. A bad file raises PolicyError with one line."""
    if not path:
        return default_policy()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    return parse_policy(text, str(path), Path(path).resolve().parent)


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The packaged policy (read on first use, not at import)."""
    return parse_policy(resources.files("pipeline").joinpath("data", PACKAGED).read_text(encoding="utf-8"))
