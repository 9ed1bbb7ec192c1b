"""Recognition quality on real audio: `python -m evaluation.eval_asr` (run it with `nice -n 10`).

- CER on ../shared/audio (every utterance with a transcript, language zh), finance and general
  separately and in total, and on a held-out half chosen by a hash of the utterance id (that
  half was not read while the vocabulary was written). Both sides are normalised the same way:
  punctuation and spaces go, numbers are read by `vocabulary.normalise_numbers`.
- Domain-term recall on the Mandarin sample calls: the vocabulary terms spoken in their scripts
  (data/samples/truth), found again in the pipeline's turns.
- Whether media_threat and regulator_threat are flagged on zh-1001-b (through
  `process_recording`), and the English sample calls' WER.

Whisper outputs are cached in data/out/eval_asr/<config>/ so reruns (and the correction, which
runs on the cached recognition) are cheap. `--config` picks decoding options to compare.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from evaluation.common import sample_truth
from evaluation.metrics import cer, normalise_zh, wer
from evaluation.recognition import recognition_settings, record
from pipeline.intake.audio import decode
from pipeline.records import join_words
from pipeline.run.serial import load_recognition, transcript_from_dict, transcript_to_dict
from pipeline.speech.asr import PRESETS, EngineSpec, TranscribeOptions, postprocess
from pipeline.speech.transcribe import load_engine
from pipeline.vocabulary.correct import correct_transcript
from pipeline.vocabulary.numbers import normalise_numbers
from pipeline.vocabulary.rescore import RescoreOptions, rescore_transcript, segment_clip
from pipeline.vocabulary.terms import hotwords, written_terms

ROOT = Path(__file__).resolve().parent.parent
SHARED_AUDIO = ROOT.parent / "shared" / "audio"
SAMPLES = ROOT / "data" / "samples"
CACHE = ROOT / "data" / "out" / "eval_asr"
GENERAL = ROOT / "tests" / "eval" / "zh_general"


def _configs() -> dict[str, TranscribeOptions]:
    base = TranscribeOptions()
    hot = hotwords()
    prompt = "以下是银行客服电话录音，涉及" + hotwords(max_chars=60) + "。"
    return {
        "baseline": base,
        "beam5-everywhere": replace(base, mandarin_beam_size=None, mandarin_patience=None),  # before Mandarin's own beam
        "wide-everywhere": replace(base, wide_beam_below=None),  # beam 8 on every Mandarin window (before this round)
        "fast": PRESETS["fast"],
        "hotwords": replace(base, hotwords=hot),
        "hotwords-short": replace(base, hotwords=hotwords(max_chars=50)),
        "prompt": replace(base, initial_prompt=prompt),
        "beam1": replace(base, beam_size=1),
        "beam8-patience2": replace(base, beam_size=8, patience=2.0),
        "no-fallback": replace(base, temperature=(0.0,)),
        "hotwords-beam8": replace(base, hotwords=hot, beam_size=8, patience=2.0),
    }


@dataclass(frozen=True)
class Utterance:
    id: str
    domain: str  # finance | general | aishell | speech (not a service call: tests/eval/zh_general)
    path: Path
    reference: str
    half: str | None = None  # "tune" | "report" where the set names it

    @property
    def held_out(self) -> bool:
        """Half of the utterances, chosen by hash before the vocabulary was written (or as the set names it)."""
        if self.half is not None:
            return self.half == "report"
        return hashlib.sha1(self.id.encode()).digest()[0] % 2 == 1


def utterances(folder: Path = SHARED_AUDIO) -> list[Utterance]:
    out = []
    for sub in sorted(folder.glob("zh_customer_service_*")):
        domain = sub.name.rsplit("_", 1)[-1]
        for line in (sub / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                uid, text = line.split("\t", 1)
                if (sub / f"{uid}.wav").exists():
                    out.append(Utterance(uid, domain, sub / f"{uid}.wav", text.strip()))
    for txt in sorted(folder.glob("zh_*.txt")):
        if txt.with_suffix(".wav").exists():
            out.append(Utterance(txt.stem, "aishell", txt.with_suffix(".wav"),
                                 txt.read_text(encoding="utf-8").split()[-1]))
    return out


def general_utterances(folder: Path = GENERAL) -> list[Utterance]:
    """Mandarin that is no bank or insurance service call (tests/eval/zh_general/README.md)."""
    rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [Utterance(r["id"], "speech", folder / r["file"], r["reference"], r["half"]) for r in rows]


_PLACE_VALUE = re.compile(r"[零一二三四五六七八九两]*[十百千万亿][零一二三四五六七八九十百千万亿两]*")


def _values(text: str) -> str:
    """Scoring only: every place-value numeral as its value (一千七百九十九 → 1799, as Whisper
    writes it), whatever follows. Applied to both sides, so it never favours one."""
    import cn2an

    def value(m: re.Match) -> str:
        try:
            return str(int(cn2an.cn2an(m.group(0).replace("两", "二"), "smart")))
        except (ValueError, KeyError, IndexError, TypeError):
            return m.group(0)
    return _PLACE_VALUE.sub(value, text)


def normalise(text: str) -> str:
    """What CER compares: numbers read one way, then no punctuation or spaces."""
    return normalise_zh(_values(normalise_numbers(text)))


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    ref, hyp = normalise(reference), normalise(hypothesis)
    return round(cer(ref, hyp) * max(len(ref), 1)), len(ref)


def cache_dir(name: str, options: TranscribeOptions) -> Path:
    """Cached Whisper runs of a config, keyed by its options too: a changed default is a new run."""
    digest = hashlib.sha256(json.dumps(asdict(options), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return CACHE / f"{name}-{digest}"


def recognise_utterances(name: str, options: TranscribeOptions, spec: EngineSpec, items: list[Utterance],
                         engines=None):
    """Transcripts per utterance id, from the cache or from Whisper (then cached)."""
    folder = cache_dir(name, options) / "utterances"
    folder.mkdir(parents=True, exist_ok=True)
    out, engine, seconds, audio_seconds = {}, None, 0.0, 0.0
    for u in items:
        path = folder / f"{u.id}.json"
        if path.exists():  # clean-up again: it may have learnt since the run was cached
            out[u.id] = postprocess(transcript_from_dict(json.loads(path.read_text(encoding="utf-8"))), options)
            continue
        engine = engine or load_engine(spec, engines)
        audio = decode(u.path).mono()
        clock = time.perf_counter()
        t = engine.transcribe(audio, replace(options, language="zh"))
        seconds += time.perf_counter() - clock
        audio_seconds += len(audio) / 16000
        path.write_text(json.dumps(transcript_to_dict(t), ensure_ascii=False), encoding="utf-8")
        out[u.id] = t
    if audio_seconds:
        print(f"[{name}] transcribed {audio_seconds:.0f} s of audio in {seconds:.0f} s")
    return out


def corrected_utterance(u: Utterance, transcript, scorer=None, rescore_options: RescoreOptions | None = None):
    """(transcript, corrections) after correction by sound, then, with a `scorer` (the Whisper
    engine), rescoring of loose matches on the utterance's audio."""
    transcript, corrections = correct_transcript(transcript)
    if scorer is not None:
        audio = decode(u.path)
        transcript, rescored = rescore_transcript(
            transcript, lambda seg: segment_clip(audio.samples, audio.sample_rate, seg, None), scorer,
            rescore_options, first_seq=len(corrections))
        corrections += rescored
    return transcript, corrections


def cer_table(items: list[Utterance], transcripts: dict, corrected: bool, scorer=None,
              changes: list | None = None, rescore_options: RescoreOptions | None = None) -> dict[str, float]:
    """CER by domain, in total and by half; `changes` collects (utterance, correction, errors
    before, errors after) of each correction made."""
    groups: dict[str, list[int]] = {}
    for u in items:
        t = transcripts[u.id]
        if corrected:
            t, corrections = corrected_utterance(u, t, scorer, rescore_options)
            if changes is not None:
                for c in corrections:
                    changes.append((u, c, *_change_errors(u.reference, transcripts[u.id].text, c)))
        errors, n = char_errors(u.reference, t.text)
        for g in (u.domain, "total", "held-out" if u.held_out else "seen"):
            acc = groups.setdefault(g, [0, 0])
            acc[0] += errors
            acc[1] += n
    return {g: e / max(n, 1) for g, (e, n) in groups.items()}


def _change_errors(reference: str, before: str, c) -> tuple[int, int]:
    """Errors against the reference with the text before one correction and after only it."""
    one = before.replace(c.original, c.corrected, 1)
    return char_errors(reference, before)[0], char_errors(reference, one)[0]


# --- sample calls -------------------------------------------------------------------------

def _recordings():
    from pipeline.intake.ingest import discover

    return {r.call_id: r for r in discover(SAMPLES).recordings}


def recognise_call(name: str, options: TranscribeOptions, spec: EngineSpec, call_id: str, engines=None):
    """(recording, audio, diarization, transcript) of one sample call, recognition cached."""
    from pipeline.speakers.diarize import diarize
    from pipeline.speech.transcribe import transcribe_call

    rec = _recordings()[call_id]
    audio = decode(rec.path)
    rec = replace(rec, duration=audio.duration)
    path = cache_dir(name, options) / "calls" / f"{call_id}.json"
    if path.exists():
        transcript, diarization = load_recognition(path)
        transcript = postprocess(transcript, options)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        if rec.metadata.language:
            options = replace(options, language=rec.metadata.language)
        diarization = diarize(audio.samples, engines=engines)
        clock = time.perf_counter()
        transcript = transcribe_call(audio, diarization, spec, options, engines=engines)
        record(path, transcript, diarization, rec.path, recognition_settings(spec, options), call_id=call_id,
               config=name, seconds=time.perf_counter() - clock)
    return rec, audio, diarization, transcript




def spoken_terms(text: str) -> list[str]:
    """Vocabulary terms in a script, longest first without overlap (媒体曝光, not also 媒体)."""
    return written_terms(normalise_numbers(text))


def term_recall(call_id: str, turns) -> tuple[int, int, list[str]]:
    """(found, spoken, missed): each spoken term occurrence counts once; found when the
    pipeline's text of the call holds it as often (numbers normalised on both sides)."""
    spoken: dict[str, int] = {}
    for turn in sample_truth(call_id)["turns"]:
        for term in spoken_terms(turn["text"]):
            spoken[term] = spoken.get(term, 0) + 1
    heard = normalise_numbers(join_words([t.text for t in turns]))
    found = {term: min(n, heard.count(term)) for term, n in spoken.items()}
    missed = [t for t, n in spoken.items() if found[t] < n]
    return sum(found.values()), sum(spoken.values()), missed


def evaluate_calls(name: str, options: TranscribeOptions, spec: EngineSpec, corrected: bool,
                   rescore: bool = True, engines=None) -> dict:
    from pipeline.engines import Engines
    from pipeline.run.stages import analyse_call

    out, engines = {}, engines or Engines()  # loaded once for the four calls
    for call_id in ("zh-1001-a", "zh-1001-b", "en-2001", "en-2002"):
        rec, audio, diarization, transcript = recognise_call(name, options, spec, call_id, engines)
        scorer = load_engine(spec, engines) if corrected and rescore else None
        result = analyse_call(rec, audio, diarization, transcript, correct=corrected, engines=engines, scorer=scorer)
        row = {}
        if transcript.language == "zh":
            found, spoken, missed = term_recall(call_id, result.turns)
            row |= {"terms_found": found, "terms_spoken": spoken, "missed": missed}
        else:
            ref = " ".join(t["text"] for t in sample_truth(call_id)["turns"])
            row["wer"] = wer(ref, join_words([t.text for t in result.turns]))
        flags = sorted(result.escalation.flags) if result.escalation else []
        row["flags"] = flags
        row["corrections"] = [f"{c.original}→{c.corrected}" for c in result.corrections]
        out[call_id] = row
    return out


def wide_beam_curve(spec: EngineSpec = EngineSpec(), engines=None,
                    bars: tuple[float, ...] = (-0.2, -0.25, -0.3, -0.35, -0.4, -0.5, -0.6, -0.8, -1.0)) -> dict:
    """How the bar for re-decoding a Mandarin window at the wide beam was chosen: each utterance
    decoded at beam 5 and at the wide beam (both cached), then, for each bar, the wide decode taken
    where the beam-5 decode's average log probability (its lowest segment's) is under the bar.
    Corrected CER and the share re-decoded per bar, on the seen half and on the held-out half.
    The utterances are one window each (under 30 s); the beam-5 log probability read here is that of
    the decode kept after any retry, and a loop (which the engine also widens) is not counted, so
    the curve is close to, not exactly, what the engine decides."""
    base = TranscribeOptions()
    narrow, wide = replace(base, mandarin_beam_size=None, mandarin_patience=None), replace(base, wide_beam_below=None)
    items = utterances()
    at5 = recognise_utterances("beam5-everywhere", narrow, spec, items, engines)
    at8 = recognise_utterances("wide-everywhere", wide, spec, items, engines)
    out = {}
    for half in ("seen", "held-out"):
        part = [u for u in items if u.held_out == (half == "held-out")]
        rows = {}
        for bar in (*bars, None):
            chosen, widened = {}, 0
            for u in part:
                worst = min((seg.avg_logprob for seg in at5[u.id].segments), default=0.0)
                take = bar is None or worst < bar
                chosen[u.id] = at8[u.id] if take else at5[u.id]
                widened += take
            rows["everywhere" if bar is None else f"{bar:g}"] = {
                "cer": cer_table(part, chosen, True)["total"], "widened": widened / len(part)}
        rows["never"] = {"cer": cer_table(part, at5, True)["total"], "widened": 0.0}
        out[half] = rows
    return out


def general_speech(spec: EngineSpec = EngineSpec(), engines=None, scorer=None) -> dict:
    """What the vocabulary does to Mandarin that is no service call, by half: CER before and after
    correction (and rescoring, with a `scorer`), and every change it makes; each utterance is
    corrected as a call of its own would be."""
    items = general_utterances()
    transcripts = recognise_utterances("baseline", TranscribeOptions(), spec, items, engines)
    out = {}
    for half in ("tune", "report"):
        part = [u for u in items if u.half == half]
        changes: list = []
        after = cer_table(part, transcripts, True, scorer, changes)["total"]
        out[half] = {"utterances": len(part), "cer_raw": cer_table(part, transcripts, False)["total"], "cer": after,
                     "changes": [(u.id, c.kind, c.original, c.corrected, b, a) for u, c, b, a in changes]}
    return out


def print_general(report: dict) -> None:
    for half, r in report.items():
        wrong = sum(a > b for *_, b, a in r["changes"])
        print(f"general Mandarin ({half} half, {r['utterances']} utterances): CER {r['cer_raw']:.2%} -> {r['cer']:.2%}; "
              f"{len(r['changes'])} changes, {wrong} wrong = {100 * wrong / max(r['utterances'], 1):.1f} per 100 "
              "utterances (target 0): " + ", ".join(f"{o}→{c} ({k}){'+' if a < b else '-' if a > b else '='}"
                                                    for _, k, o, c, b, a in r["changes"]))


# A little past the length where the gate can act (vocabulary.domain: 122 characters).
STRETCH_CHARS = 140


def domain_report(spec: EngineSpec = EngineSpec(), engines=None) -> dict:
    """The evidence behind vocabulary.domain: Han characters per written banking term in the bank
    service lines of ../shared/audio by half (the rate the gate assumes), and the gate's decision on the sample
    calls and ../shared/dev/calls_zh (service calls) and on the general Mandarin set, each
    speaker's utterances joined as one long conversation (no service call), by half."""
    from collections import defaultdict

    from evaluation.recognition import RECOGNITION, calls_zh_runs, stored_ids
    from pipeline.records import Transcript
    from pipeline.vocabulary.domain import banking_terms, call_domain

    items = utterances()
    transcripts = recognise_utterances("baseline", TranscribeOptions(), spec, items, engines)
    rate = {}
    bank = [u for u in items if u.domain == "finance"]  # the other lines are service of other trades
    for half in ("seen", "held-out"):
        found = [call_domain(transcripts[u.id]) for u in bank if u.held_out == (half == "held-out")]
        terms = sum(len(banking_terms("".join(s.text for s in transcripts[u.id].segments)))
                    for u in bank if u.held_out == (half == "held-out"))
        rate[half] = {"characters": sum(d.characters for d in found), "terms": terms,
                      "gated": sum(not d.service for d in found), "lines": len(found)}
    service = {}
    for path in [RECOGNITION / f"{c}.json" for c in stored_ids()] + [p for p, _ in calls_zh_runs()]:
        transcript, _ = load_recognition(path)
        if transcript.language == "zh":
            service[path.stem] = call_domain(transcript).to_dict()
    general = general_utterances()
    said = recognise_utterances("baseline", TranscribeOptions(), spec, general, engines)
    groups: dict = defaultdict(list)
    for u in general:
        speaker = u.id.split("W")[0] if u.id.startswith(("BAC", "aishell")) else "common_voice"
        groups[(u.half, speaker)].extend(said[u.id].segments)
    conversations = {f"{half}/{speaker}": call_domain(Transcript("zh", 1.0, tuple(segs), 0.0, "", "")).to_dict()
                     for (half, speaker), segs in sorted(groups.items())}
    # The gate only acts past 122 characters, longer than almost any single line: cut each half's lines,
    # joined in id order, into stretches just past that length and count those taken for no
    # service call (service lines: the wrong ones; general Mandarin: the right ones).
    stretches = {}
    trades = [u for u in items if u.domain == "general"]
    for name, group, said_of in (("bank service", bank, transcripts), ("other service", trades, transcripts),
                                 ("general", general, said)):
        for half in ("seen", "held-out"):
            part = [u for u in group if u.held_out == (half == "held-out")]
            pieces, current = [], []
            for u in sorted(part, key=lambda u: u.id):
                current.extend(said_of[u.id].segments)
                domain = call_domain(Transcript("zh", 1.0, tuple(current), 0.0, "", ""))
                if domain.characters >= STRETCH_CHARS:
                    pieces.append(domain)
                    current = []
            stretches[f"{name}/{half}"] = {"stretches": len(pieces), "gated": sum(not d.service for d in pieces)}
    return {"rate": rate, "service_calls": service, "general_conversations": conversations, "stretches": stretches}


def print_domain(report: dict) -> None:
    for half, r in report["rate"].items():
        print(f"bank service lines, {half} half: {r['characters']} Han characters, {r['terms']} terms written = "
              f"{r['characters'] / max(r['terms'], 1):.1f} characters per term; {r['gated']} of {r['lines']} lines "
              "taken for no service call")
    for name, r in report["stretches"].items():
        print(f"  {name:28} stretches of {STRETCH_CHARS}+ characters taken for no service call: "
              f"{r['gated']} of {r['stretches']}")
    for name, d in list(report["service_calls"].items()) + list(report["general_conversations"].items()):
        print(f"  {name:28} {'service' if d['service'] else 'NOT service':12} {d['characters']:5} characters, "
              f"{len(d['terms'])} terms, P(no term | service) {d['p_no_term_if_service']:.3g}")


def accuracy(name: str, options: TranscribeOptions, spec: EngineSpec = EngineSpec(), engines=None) -> dict:
    """The figures a decoding setting is judged by: CER on ../shared/audio after correction (and
    rescoring, when the options rescore), raw too; domain-term recall on the Mandarin sample calls.
    Recognition is cached per options (data/out/eval_asr): a second run only scores."""
    items = utterances()
    transcripts = recognise_utterances(name, options, spec, items, engines)
    scorer = load_engine(spec, engines) if options.rescore_vocabulary else None
    calls = evaluate_calls(name, options, spec, True, options.rescore_vocabulary, engines)
    zh = [row for row in calls.values() if "terms_spoken" in row]
    return {"utterances": len(items), "cer_raw": cer_table(items, transcripts, False)["total"],
            "cer": cer_table(items, transcripts, True, scorer)["total"],
            "terms_found": sum(r["terms_found"] for r in zh), "terms_spoken": sum(r["terms_spoken"] for r in zh)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append",
                        help=f"decoding options to compare (default: baseline, the pipeline's): {', '.join(_configs())}")
    parser.add_argument("--no-calls", action="store_true", help="skip the sample calls")
    parser.add_argument("--no-rescore", action="store_true", help="correction by sound only (no Whisper rescoring)")
    parser.add_argument("--half", choices=("all", "seen", "held-out"), default="all",
                        help="utterances to use (compare options on the seen half, report the held-out one)")
    parser.add_argument("--rescore-context", type=int, default=RescoreOptions().context_chars,
                        help="characters either side of a span that rescoring hears, on the utterances "
                             "(1000: whole segments)")
    parser.add_argument("--rescore-margin", type=float, default=RescoreOptions().margin,
                        help="log-probability a term's reading must gain, on the utterances")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--domain", action="store_true",
                        help="only: the evidence behind vocabulary.domain (service call or not), by half")
    parser.add_argument("--general", action="store_true",
                        help="only: what correction and rescoring do to general Mandarin (tests/eval/zh_general), by half")
    parser.add_argument("--wide-beam-curve", action="store_true",
                        help="only: corrected CER against the bar for re-decoding at the wide beam, by half")
    args = parser.parse_args(argv)
    if args.wide_beam_curve:
        curve = wide_beam_curve()
        print(f"{'bar':>10} " + " ".join(f"{h + ' CER':>14} {'widened':>8}" for h in curve))
        for bar in curve["seen"]:
            print(f"{bar:>10} " + " ".join(f"{curve[h][bar]['cer']:14.2%} {curve[h][bar]['widened']:8.0%}" for h in curve))
        return
    if args.domain:
        print_domain(domain_report())
        return
    if args.general:
        from pipeline.engines import Engines

        engines = Engines()
        print_general(general_speech(EngineSpec(), engines, None if args.no_rescore else load_engine(EngineSpec(), engines)))
        return
    configs = _configs()
    names = args.config or ["baseline"]
    unknown = [n for n in names if n not in configs]
    if unknown:
        parser.error(f"unknown config {unknown}: choose from {', '.join(configs)}")
    spec = EngineSpec()
    items = [u for u in utterances() if args.half == "all" or (args.half == "held-out") == u.held_out]
    report = {}
    print(f"{len(items)} utterances ({sum(u.held_out for u in items)} held out)")
    print(f"{'config':18} {'fix':5} {'finance':>8} {'general':>8} {'total':>8} {'seen':>8} {'held-out':>8}")
    from pipeline.engines import Engines

    engines = Engines()  # one set of models for the whole evaluation
    scorer = load_engine(spec, engines) if not args.no_rescore else None
    for name in names:
        transcripts = recognise_utterances(name, configs[name], spec, items, engines)
        for fix, corrected, judge in (("no", False, None), ("sound", True, None), ("yes", True, scorer)):
            if fix == "yes" and judge is None:
                continue
            changes: list = []
            table = cer_table(items, transcripts, corrected, judge, changes,
                              RescoreOptions(context_chars=args.rescore_context, margin=args.rescore_margin))
            report[f"{name}{'+' + fix if corrected else ''}"] = {"cer": table}
            print(f"{name:18} {fix:5} " + " ".join(
                f"{100 * table.get(g, float('nan')):7.2f}%" for g in ("finance", "general", "total", "seen", "held-out")))
            for kind in sorted({c.kind for _, c, _, _ in changes}):
                mine = [(u, c, b, a) for u, c, b, a in changes if c.kind == kind]
                for half in ("seen", "held-out"):
                    part = [(u, c, b, a) for u, c, b, a in mine if u.held_out == (half == "held-out")]
                    print(f"    {kind} corrections, {half}: {sum(a < b for *_, b, a in part)} right, "
                          f"{sum(a > b for *_, b, a in part)} wrong, {sum(a == b for *_, b, a in part)} neither of "
                          f"{len(part)}: " + ", ".join(f"{c.original}→{c.corrected}{'+' if a < b else '-' if a > b else '='}"
                                                     for _, c, b, a in part))
    if not args.no_calls:
        for name in names:
            for fix, corrected, rescore in (("no", False, False), ("sound", True, False), ("yes", True, True)):
                if fix == "yes" and args.no_rescore:
                    continue
                calls = evaluate_calls(name, configs[name], spec, corrected, rescore, engines)
                report.setdefault(f"{name}{'+' + fix if corrected else ''}", {})["calls"] = calls
                found = sum(r.get("terms_found", 0) for r in calls.values())
                spoken = sum(r.get("terms_spoken", 0) for r in calls.values())
                b = calls["zh-1001-b"]["flags"]
                print(f"{name:18} {fix:5} terms {found}/{spoken} "
                      f"({100 * found / max(spoken, 1):.0f}%) missed {[m for r in calls.values() for m in r.get('missed', [])]}; "
                      f"zh-1001-b media_threat={'media_threat' in b} regulator_threat={'regulator_threat' in b}; "
                      f"WER en-2001 {100 * calls['en-2001']['wer']:.1f}% en-2002 {100 * calls['en-2002']['wer']:.1f}%"
                      + (f"; corrections {[c for r in calls.values() for c in r['corrections']]}" if corrected else ""))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
