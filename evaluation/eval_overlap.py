"""`python -m evaluation.eval_overlap`: how much of the DER of mono calls is overlapped speech, and
whether the clustering backend's overlap detector (`clustering.overlap_segments`) wins it back.

The calls: every mono call with timed truth, by half: the dev calls of `eval_speakers` (the aws mix
is in the tune half by /work/devset's key, calls_zh and the mono sample calls in the report half by
their agent's voice, the rule of `eval_roles.half_of`) and the calls of /work/devset (its manifest's
half; its aws_auto_repairs_49 is the dev aws mix, counted once). `--codecs` adds the dev calls
through each codec (evaluation/codecs.py), reported apart.

- DER split: the error seconds (collar 0.25 s, as eval_speakers) inside the truth's overlapped
  speech (two speakers at once), of which missed speech, and the error elsewhere.
- The detector (`clustering.overlap_segments`): a frame of speaker a is called a and b at once when
  its embedding is nearer, by more than the margin (cosine), to the mean embedding of a's audio
  mixed with b's (synthesised from the call, `clustering.mixture_means`) than to a's own mean.
- The detector's margin is calibrated on the tune half by a stated rule: of the grid, the margin
  with the lowest pooled tune DER(0.25); on a tie, the larger margin (fewer frames called two voices).
  It is then reported on the report half and the codec copies beside "off".
- Each call is diarized once (the model runs once); the detector's inputs are cached in
  data/cache/overlap/ and every margin is applied to them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from dataclasses import replace

import numpy as np

from evaluation.common import CACHE
from evaluation.eval_roles import DEVSET, half_of
from evaluation.eval_speakers import EvalCall, eval_calls, rttm_turns, truth_turns
from pipeline.intake.audio import decode
from pipeline.records import Diarization
from pipeline.speakers.options import DiarizationOptions

OVERLAP_CACHE = CACHE / "overlap"
GRID = (0.0, 0.01, 0.02, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.08)
COLLAR = 0.25


def overlap_calls(codecs: list[str]) -> list[tuple[str, EvalCall, list[dict]]]:
    """(half, call, truth) for every mono call with timed truth, and the dev ones through `codecs`."""
    rows = []
    for call in eval_calls():
        if call.layout != "mono" or call.truth_kind == "count":
            continue
        key = "aws_lca_auto_repairs" if call.name.startswith("aws_") else call.agent_id
        for codec in [None, *codecs]:
            rows.append((half_of(key), replace(call, codec=codec), truth_turns(call)))
    manifest = DEVSET / "manifest.json"
    if manifest.exists():
        for r in json.loads(manifest.read_text(encoding="utf-8")):
            if r["kind"] != "call" or r["id"] == "aws_auto_repairs_49" or r.get("channels", 1) != 1:
                continue
            path = DEVSET / r["path"]
            rows.append((r["half"], EvalCall(r["id"], path, r["language"], r["n_speakers"], "mono", None, "devset"),
                         rttm_turns(path.parent / "truth.rttm")))
    return rows


def detector_inputs(call: EvalCall) -> dict:
    """The clustering backend's result with the detector off, and what the detector would be
    given (fine frames, their labels, the segments): cached per call and codec."""
    from pipeline.speakers.backends import clustering

    # An infinite margin: the mixtures are heard, no frame is called overlapped (every margin is
    # applied afterwards), so the cache does not depend on the margin in use.
    options = replace(DiarizationOptions(), overlap_margin=float("inf"))
    digest = hashlib.sha256(f"{call.path}|{call.codec}|{options}".encode()).hexdigest()[:16]
    out = OVERLAP_CACHE / f"{digest}.pkl"
    if out.exists():
        return pickle.loads(out.read_bytes())
    seen: dict = {}
    real = clustering.overlap_segments

    def record(centres, embeds, labels, mixtures, segments, hop, options):
        seen.update(centres=centres, embeds=embeds, labels=labels, mixtures=mixtures, segments=list(segments),
                    hop=hop)
        return real(centres, embeds, labels, mixtures, segments, hop, options)

    clustering.overlap_segments = record
    try:
        if call.codec:
            from evaluation.codecs import degraded

            audio = decode(degraded(call.path, call.codec))
        else:
            audio = decode(call.path)
        samples = audio.samples.mean(axis=0) if audio.samples.ndim == 2 else audio.samples
        d = clustering.cluster_diarization(samples, options)
    finally:
        clustering.overlap_segments = real
    seen["n_speakers"] = d.n_speakers
    seen.setdefault("segments", list(d.segments))  # one speaker (or no fine pass): nothing to detect
    OVERLAP_CACHE.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(seen))
    return seen


def with_margin(inputs: dict, margin: float | None) -> Diarization:
    """The diarization the backend gives with `overlap_margin` = margin (speaker names as before
    renaming: DER does not care)."""
    from pipeline.speakers.backends.clustering import overlap_segments

    segments = list(inputs["segments"])
    if "embeds" in inputs:
        options = replace(DiarizationOptions(), overlap_margin=margin)
        segments += overlap_segments(inputs["centres"], inputs["embeds"], inputs["labels"], inputs["mixtures"],
                                     inputs["segments"], inputs["hop"], options)
    segments.sort(key=lambda s: s.start)
    return Diarization(tuple(segments), "clustering", inputs["n_speakers"])


def der_split(truth: list[dict], diarization: Diarization) -> dict:
    """Error seconds (collar 0.25 s) inside the truth's overlapped speech and outside it."""
    import warnings

    from pyannote.core import Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    from evaluation.metrics import reference_annotation

    ref, hyp = reference_annotation(truth), diarization.to_annotation()
    extent = (ref.get_timeline().extent() | hyp.get_timeline().extent())
    overlap = ref.get_overlap().support()
    rest = Timeline([extent]).extrude(overlap) if overlap else Timeline([extent])
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, uem in (("all", Timeline([extent])), ("overlap", overlap), ("rest", rest)):
            if not uem:
                out[name] = {"error": 0.0, "missed": 0.0, "total": 0.0}
                continue
            p = DiarizationErrorRate(collar=COLLAR, skip_overlap=False)(ref, hyp, uem=uem, detailed=True)
            out[name] = {"error": p["confusion"] + p["missed detection"] + p["false alarm"],
                         "missed": p["missed detection"], "total": p["total"]}
    return out


def frame_auc(inputs: dict, truth: list[dict]) -> tuple[float | None, int]:
    """How well the detector's gain separates frames whose centre is in truth overlap from the
    rest (ROC AUC), and how many such frames there are."""
    if "embeds" not in inputs:
        return None, 0
    from evaluation.eval_escalation import auc
    from pipeline.speakers.backends.clustering import overlap_frames

    _, gain = overlap_frames(inputs["embeds"], inputs["labels"], inputs["mixtures"])
    c = inputs["centres"]
    count = np.zeros(len(c), dtype=int)
    for t in truth:
        count += (c >= t["start"]) & (c <= t["end"])
    pos, neg = gain[count >= 2], gain[count == 1]
    return (auc(list(pos), list(neg)) if len(pos) and len(neg) else None), int(len(pos))


def _pct(e: float, t: float) -> str:
    return f"{100 * e / t:6.2f}%" if t else "     -"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.eval_overlap", description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", nargs="*", metavar="CODEC", help="also the dev calls through these codecs")
    args = parser.parse_args(argv)
    from evaluation.codecs import CODECS

    codecs = [] if args.codecs is None else (args.codecs or list(CODECS))
    rows = []
    for half, call, truth in overlap_calls(codecs):
        inputs = detector_inputs(call)
        splits = {m: der_split(truth, with_margin(inputs, m)) for m in (None, *GRID)}
        rows.append((half, call, truth, inputs, splits))
    print("DER(0.25) split on mono calls with timed truth: error inside the truth's overlapped speech "
          "(missed) + elsewhere = total, detector off")
    print(f"{'call':36} {'half':6} {'spk':>3} {'overlap s':>9} {'in overlap':>10} {'(missed)':>8} "
          f"{'elsewhere':>9} {'DER':>6}  frame AUC (n overlap frames)")
    for half, call, truth, inputs, splits in rows:
        s = splits[None]
        a, n = frame_auc(inputs, truth)
        t = s["all"]["total"]
        print(f"{call.label[:36]:36} {half:6} {inputs['n_speakers']:>3} {s['overlap']['total'] / 2:9.1f} "
              f"{_pct(s['overlap']['error'], t):>10} {_pct(s['overlap']['missed'], t):>8} "
              f"{_pct(s['rest']['error'], t):>9} {_pct(s['all']['error'], t):>6}  "
              + (f"{a:.3f} ({n})" if a is not None else "-"))

    groups = {"tune": lambda h, c: h == "tune" and not c.codec, "report": lambda h, c: h == "report" and not c.codec,
              "codecs (dev calls)": lambda h, c: bool(c.codec)}

    def pooled(pick, m):
        part = [r[4][m]["all"] for r in rows if pick(r[0], r[1])]
        return sum(p["error"] for p in part), sum(p["total"] for p in part)

    print("\npooled DER(0.25) by margin (off = detector off):")
    print(f"{'margin':>7} " + " ".join(f"{g:>20}" for g in groups))
    for m in (None, *GRID):
        print(f"{'off' if m is None else m:>7} " + " ".join(f"{_pct(*pooled(p, m)):>20}" for p in groups.values()))
    tune = {m: pooled(groups["tune"], m)[0] for m in GRID}
    best = min(GRID, key=lambda m: (round(tune[m], 6), -m))
    print(f"\ncalibrated on the tune half (lowest pooled DER, ties to the larger margin): {best}")
    print(f"{'call':36} {'half':6} {'off':>6} {best:>6}")
    for half, call, _, _, splits in rows:
        t = splits[None]["all"]["total"]
        print(f"{call.label[:36]:36} {half:6} {_pct(splits[None]['all']['error'], t)} "
              f"{_pct(splits[best]['all']['error'], t)}")
    for name, pick in groups.items():
        print(f"pooled {name:20} off {_pct(*pooled(pick, None))} -> {_pct(*pooled(pick, best))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
