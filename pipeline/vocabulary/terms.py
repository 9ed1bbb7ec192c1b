"""The Mandarin banking vocabulary (pipeline/data/vocabulary_zh.tsv), used two ways.

1. `hotwords()`: a short list of terms offered to Whisper's decoder.
2. `correct_segment()`: after recognition, a span that sounds like a vocabulary term but is
   written otherwise (借动 for 解冻, 合对 for 核对) is replaced by the term. Spans are compared
   syllable by syllable in pinyin, tolerant to the confusions of Mandarin speakers and of
   telephone audio (zh/z, ch/c, sh/s, n/l, f/h, q/x, the nasals en/eng, in/ing, an/ang, and tones). A replacement needs a
   close match, and stronger evidence (a low Whisper word probability) when the span is itself
   a common word. Only the matched span changes, and only into a vocabulary term.
Numbers are read by `vocabulary.numbers`; a whole transcript is corrected by `vocabulary.correct`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

from pipeline.config.datafiles import Term, parse_vocabulary, read_text
from pipeline.records import Correction, Segment, join_words

VOCABULARY_FILE = "vocabulary_zh.tsv"


@lru_cache(maxsize=4)
def vocabulary(source: str | None = None) -> tuple[Term, ...]:
    """The terms of a vocabulary: `source` is the text of a vocabulary file (a bank's own, named
    in its policy: pipeline/config/policy.py), None for the packaged vocabulary_zh.tsv."""
    return parse_vocabulary(read_text(VOCABULARY_FILE) if source is None else source)


# --- 1. hotwords --------------------------------------------------------------------------

# What the decoder hears most often in complaint calls and what the flags hang on. Whisper keeps
# at most ~220 prompt tokens, so the hotword list is short: categories in this order.
HOTWORD_CATEGORIES = ("regulator", "escalation", "freeze", "identity", "complaint", "insurance", "credit",
                      "card", "account", "transfer", "loan", "wealth", "fee")


def hotwords(max_chars: int = 120, categories: tuple[str, ...] = HOTWORD_CATEGORIES) -> str:
    """Vocabulary terms for Whisper's `hotwords`, most important categories first, up to
    `max_chars` characters (a Chinese character is one or two prompt tokens)."""
    chosen, size = [], 0
    for category in categories:
        for term in vocabulary():
            if term.category == category and size + len(term.text) + 1 <= max_chars:
                chosen.append(term.text)
                size += len(term.text) + 1
    return "，".join(chosen)


# --- 2. near-homophone correction ---------------------------------------------------------

_HAN = re.compile(r"[\u4e00-\u9fff]")
# Initials and finals Mandarin speakers (and band-limited audio) confuse: mapped to one form.
_INITIAL_MERGE = {"zh": "z", "ch": "c", "sh": "s", "n": "l", "f": "h", "q": "x"}
_FINAL_MERGE = {"eng": "en", "ing": "in", "ueng": "uen", "ang": "an", "iang": "ian", "uang": "uan"}

# Costs per syllable (0 = the same sound): a tone is a small difference, a listed confusion a
# larger one, anything else is not a near-homophone and rules the span out.
TONE_COST = 0.15
CONFUSION_COST = 0.4
# Terms of LONG_TERM+ syllables may have one syllable not a near-homophone when the rest sound
# exactly right (tones aside); it costs SUBSTITUTION_COST (4 syllables: similarity 0.85).
LONG_TERM = 4
SUBSTITUTION_COST = 0.6
# A span is replaced when its phonetic similarity (1 - mean syllable cost) reaches this...
MIN_SIMILARITY = 0.8
# ...and, when the span is itself a common word (jieba dictionary frequency at least
# COMMON_WORD_FREQ), only if Whisper was unsure of it.
COMMON_WORD_FREQ = 50
MAX_PROBABILITY_FOR_WORDS = 0.5


@dataclass(frozen=True)
class _Syllable:
    initial: str
    final: str
    tone: str


@lru_cache(maxsize=8192)
def _readings(char: str) -> tuple[_Syllable, ...]:
    """The two commonest readings of one character (给 is gei3 and ji3; 还 hai2 and huan2).
    Rarer readings (不 as fu1) would make nearly anything sound alike."""
    from pypinyin import Style, pinyin  # heavy: its dictionaries load on first use

    initials = pinyin(char, style=Style.INITIALS, heteronym=True, strict=False)[0]
    out = []
    for full in pinyin(char, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0][:2]:
        tone = full[-1] if full[-1].isdigit() else "5"
        bare = full.rstrip("012345")
        initial = next((i for i in sorted(set(initials), key=len, reverse=True) if i and bare.startswith(i)), "")
        out.append(_Syllable(initial, bare[len(initial):], tone))
    return tuple(dict.fromkeys(out)) or (_Syllable("", char, "5"),)


def _merged(s: _Syllable) -> tuple[str, str]:
    return _INITIAL_MERGE.get(s.initial, s.initial), _FINAL_MERGE.get(s.final, s.final)


def _syllable_cost(a: _Syllable, b: _Syllable) -> float:
    if (a.initial, a.final) == (b.initial, b.final):
        return 0.0 if a.tone == b.tone else TONE_COST
    if _merged(a) == _merged(b):
        return CONFUSION_COST + (0.0 if a.tone == b.tone else TONE_COST)
    return 1.0


@lru_cache(maxsize=65536)
def _char_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return min(_syllable_cost(x, y) for x in _readings(a) for y in _readings(b))


def similarity(span: str, term: str) -> float:
    """1 - mean syllable cost: 1.0 for the same sounds, below MIN_SIMILARITY when any syllable
    is not a near-homophone of the term's."""
    if len(span) != len(term):
        return 0.0
    costs = [_char_cost(a, b) for a, b in zip(span, term)]
    if max(costs) >= 1.0:
        # A long term heard with every other syllable exact (不务态度 for 服务态度): the exact
        # run is rare by chance, so one misheard syllable is allowed, at a substitution's cost.
        misheard = [c for c in costs if c >= 1.0]
        if len(term) >= LONG_TERM and len(misheard) == 1 and sum(costs) - 1.0 <= TONE_COST:
            costs = [SUBSTITUTION_COST if c >= 1.0 else c for c in costs]
        else:
            return 0.0
    return 1.0 - sum(costs) / len(costs)


@lru_cache(maxsize=1)
def _word_frequencies() -> dict[str, int]:
    """jieba's dictionary (word, frequency): tells a real word (经历) from a mishearing (借动)."""

    freq = {}
    with resources.files("jieba").joinpath("dict.txt").open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and 2 <= len(parts[0]) <= 8:
                freq[parts[0]] = int(parts[1])
    return freq


def is_common_word(text: str) -> bool:
    return _word_frequencies().get(text, 0) >= COMMON_WORD_FREQ


@lru_cache(maxsize=8192)
def _sound_keys(char: str) -> frozenset[str]:
    """The merged sounds of a character's readings (a cheap pre-filter before `similarity`)."""
    return frozenset(_merged(s)[0] + _merged(s)[1] for s in _readings(char))


@lru_cache(maxsize=4)
def _index(source: str | None = None) -> dict[int, tuple[tuple[str, tuple[frozenset[str], ...]], ...]]:
    """Correction targets by length, with the merged sounds of their first two syllables (a cheap
    pre-filter). Only Chinese terms of 2+ characters: one character matches too much by chance,
    and hotline numbers are read by `normalise_numbers`, not guessed."""
    by_len: dict[int, list] = {}
    for term in vocabulary(source):
        if len(term.text) >= 2 and all(_HAN.match(c) for c in term.text):
            keys = tuple(frozenset(_sound_keys(c)) for c in term.text[:2])
            by_len.setdefault(len(term.text), []).append((term.text, keys))
    return {n: tuple(v) for n, v in by_len.items()}


@dataclass(frozen=True)
class Match:
    """A span of a text that sounds like a vocabulary term, and how close (higher: closer)."""
    start: int  # character offsets in the text
    end: int
    term: str
    score: float


def _cuts_a_token(text: str, i: int, j: int, unbreakable: list[bool] | None) -> bool:
    """Would replacing text[i:j] cut through a word Whisper wrote as one token
    (`unbreakable[k]`: characters k and k+1 belong to one token)?"""
    return bool(unbreakable) and ((i > 0 and unbreakable[i - 1]) or (j < len(text) and unbreakable[j - 1]))


def _splits_a_word(text: str, i: int, j: int, unbreakable: list[bool] | None) -> bool:
    """Would replacing text[i:j] cut through a word of its context? Either a Whisper token
    (`_cuts_a_token`), or a common word made of a span edge and its neighbour (点击|进入 is not 基金)."""
    if _cuts_a_token(text, i, j, unbreakable):
        return True
    return (i > 0 and is_common_word(text[i - 1:i + 1])) or (j < len(text) and is_common_word(text[j - 1:j + 1]))


def _written_terms(text: str, source: str | None) -> list[bool]:
    """Per character: is it part of a vocabulary term as written? Those are never changed
    (冻结账户 must not lose 冻结 to a span across the two terms); a longer term may contain them."""
    written = _term_texts(source)
    protected = [False] * len(text)
    for n in _index(source):
        for i in range(len(text) - n + 1):
            if text[i:i + n] in written:
                protected[i:i + n] = [True] * n
    return protected


def find_corrections(text: str, probabilities: list[float] | None = None,
                     unbreakable: list[bool] | None = None, source: str | None = None) -> list[Match]:
    """Non-overlapping spans of `text` to replace by vocabulary terms, best first.
    `probabilities` (one per character, Whisper's word probability) weighs the evidence;
    `unbreakable` marks characters joined to the next one in one Whisper token; `source`: the
    vocabulary (see `vocabulary`)."""
    probabilities = probabilities or [1.0] * len(text)  # unknown: as sure as can be
    index = _index(source)
    written = _term_texts(source)
    protected = _written_terms(text, source)
    candidates = []
    for n, terms in index.items():
        for i in range(len(text) - n + 1):
            span = text[i:i + n]
            if not all(_HAN.match(c) for c in span) or span in written:
                continue
            if _splits_a_word(text, i, i + n, unbreakable):
                continue
            first, second = _sound_keys(span[0]), _sound_keys(span[1])
            for term, keys in terms:
                # A long term's first syllable may be its one misheard syllable: then the second matches.
                if first.isdisjoint(keys[0]) and (n < LONG_TERM or second.isdisjoint(keys[1])):
                    continue
                if any(protected[i + k] and span[k] != term[k] for k in range(n)):
                    continue
                sim = similarity(span, term)
                if sim < MIN_SIMILARITY:
                    continue
                # The one syllable that is no near-homophone needs Whisper to have been unsure of it.
                if any(_char_cost(span[k], term[k]) >= 1.0 and probabilities[i + k] > MAX_PROBABILITY_FOR_WORDS
                       for k in range(n)):
                    continue
                prob = sum(probabilities[i:i + n]) / n
                if is_common_word(span) and prob > MAX_PROBABILITY_FOR_WORDS:
                    continue
                # Longer terms are less likely to match by chance; an unsure decoder is more
                # likely to have misheard.
                score = sim + 0.05 * (n - 2) + 0.2 * (1 - prob)
                candidates.append(Match(i, i + n, term, score))
    chosen: list[Match] = []
    taken = [False] * len(text)
    for m in sorted(candidates, key=lambda m: (-m.score, -(m.end - m.start), m.start)):
        if not any(taken[m.start:m.end]):
            chosen.append(m)
            for k in range(m.start, m.end):
                taken[k] = True
    return sorted(chosen, key=lambda m: m.start)


# --- 2b. loose matches, for Whisper to judge (vocabulary/rescore.py) --------------------------

# A syllable sharing only its initial or only its final with the term's (看 kan for 卡 ka, 乐 le
# for 额 e) is too far to correct on sound alone. Such loose matches of longer terms are only
# candidates: Whisper reads the audio again with the term in mind and decides (vocabulary/rescore.py).
PARTIAL_COST = 0.7
LOOSE_MIN_SYLLABLES = 3  # two-syllable terms match loosely almost anywhere
LOOSE_MIN_SIMILARITY = 0.55
# A loose match needs Whisper to have been unsure of one of its characters: where it was sure of
# every one, rescoring refused all 64 such candidates on ../shared/audio, and each costs a pass.
LOOSE_MAX_PROBABILITY = 0.9


def _loose_syllable_cost(a: _Syllable, b: _Syllable) -> float:
    cost = _syllable_cost(a, b)
    if cost < 1.0:
        return cost
    (a_initial, a_final), (b_initial, b_final) = _merged(a), _merged(b)
    return PARTIAL_COST if a_initial == b_initial or a_final == b_final else 1.0


@lru_cache(maxsize=65536)
def _loose_char_cost(a: str, b: str) -> float:
    return 0.0 if a == b else min(_loose_syllable_cost(x, y) for x in _readings(a) for y in _readings(b))


def loose_similarity(span: str, term: str) -> float:
    """1 - mean syllable cost where a syllable sharing only its initial or its final costs
    PARTIAL_COST and at most one syllable may be unlike the term's (cost 1); 0.0 otherwise."""
    if len(span) != len(term):
        return 0.0
    total, unlike = 0.0, 0
    for a, b in zip(span, term):
        cost = _loose_char_cost(a, b)
        unlike += cost >= 1.0
        if unlike > 1:
            return 0.0
        total += cost
    return 1.0 - total / len(term)


def find_loose_matches(text: str, probabilities: list[float] | None = None,
                       unbreakable: list[bool] | None = None, source: str | None = None) -> list[Match]:
    """Spans of `text` that sound loosely like a vocabulary term of LOOSE_MIN_SYLLABLES+ syllables
    (`loose_similarity` ≥ LOOSE_MIN_SIMILARITY), common words that sound like a shorter term
    (`similarity` ≥ MIN_SIMILARITY), and spans next to a written term that sound loosely like a
    shorter one, possibly overlapping, best first; each with a character Whisper was unsure of
    (`probabilities` < LOOSE_MAX_PROBABILITY). Like `find_corrections`, a span never changes a
    term already written and never cuts a Whisper token."""
    probabilities = probabilities or [1.0] * len(text)
    written = _term_texts(source)
    protected = _written_terms(text, source)
    out = []
    for n, terms in _index(source).items():
        # Shorter terms: only the close matches correction turned down because the span is a
        # common word Whisper was fairly sure of (名气 for 明细).
        close_only = n < LOOSE_MIN_SYLLABLES
        for i in range(len(text) - n + 1):
            span = text[i:i + n]
            if not all(_HAN.match(c) for c in span) or span in written or any(protected[i:i + n]):
                continue
            if _cuts_a_token(text, i, i + n, unbreakable):
                continue
            if min(probabilities[i:i + n]) >= LOOSE_MAX_PROBABILITY:
                continue
            prob = sum(probabilities[i:i + n]) / n
            # Terms come in runs (账户余额明细, 冻结账户): a span next to a written term may match loosely.
            beside_term = (i > 0 and protected[i - 1]) or (i + n < len(text) and protected[i + n])
            if close_only and not (is_common_word(span) or beside_term):
                continue
            for term, _ in terms:
                if close_only and not beside_term:
                    sim = similarity(span, term)
                else:
                    # Loosely unlike is unlike strictly too (a strict match passes the loose rules).
                    sim = loose_similarity(span, term)
                    if sim == 0.0:
                        continue
                    sim = max(sim, similarity(span, term))
                if sim >= (MIN_SIMILARITY if close_only and not beside_term else LOOSE_MIN_SIMILARITY):
                    out.append(Match(i, i + n, term, sim + 0.2 * (1 - prob)))
    return sorted(out, key=lambda m: (-m.score, m.start))


@lru_cache(maxsize=4)
def _term_texts(source: str | None = None) -> frozenset[str]:
    return frozenset(t.text for t in vocabulary(source))


def written_terms(text: str, source: str | None = None) -> list[str]:
    """The vocabulary terms `text` holds as written, every occurrence; a longer term first, so the
    shorter ones inside it are not counted again (媒体曝光, not also 媒体)."""
    found, taken = [], [False] * len(text)
    for term in sorted(_term_texts(source), key=len, reverse=True):
        start = text.find(term)
        while start >= 0:
            if not any(taken[start:start + len(term)]):
                found.append(term)
                taken[start:start + len(term)] = [True] * len(term)
            start = text.find(term, start + 1)
    return found


def preload(source: str | None = None) -> None:
    """Load what correction reads (pinyin tables, jieba's word frequencies, the term index):
    about 0.5 s once per process, paid here rather than by its first Mandarin call."""
    _index(source)
    _term_texts(source)
    _word_frequencies()
    correct_text("冻结借动", source)


def correct_text(text: str, source: str | None = None) -> str:
    """The text with near-homophones of vocabulary terms replaced (no word probabilities)."""
    out = list(text)
    for m in find_corrections(text, source=source):
        out[m.start:m.end] = list(m.term)
    return "".join(out)


def segment_characters(seg: Segment) -> tuple[str, list[int], list[float], list[bool]]:
    """A segment's text through its words, one entry per character: (text, the word each character
    belongs to, Whisper's probability of that word, whether it is joined to the next character in
    one token)."""
    chars, owner, probs, joined = [], [], [], []
    for wi, w in enumerate(seg.words):
        for k, ch in enumerate(w.text):
            chars.append(ch)
            owner.append(wi)
            probs.append(w.probability)
            # Joined to the next character of the same token, unless that is punctuation (财,).
            joined.append(k + 1 < len(w.text) and w.text[k + 1].isalnum())
    return "".join(chars), owner, probs, joined


def apply_matches(seg: Segment, matches: list[Match], kind: str, first_seq: int = 0) -> tuple[Segment, list[Correction]]:
    """The segment with each match's span replaced by its term, through its words (so word texts,
    times and the segment text agree), and the corrections made. A span's times are its first and
    last word's."""
    text, owner, _, _ = segment_characters(seg)
    chars = list(text)
    corrections = []
    for m in matches:
        chars[m.start:m.end] = list(m.term)
        corrections.append(Correction(seq=first_seq + len(corrections), start=seg.words[owner[m.start]].start,
                                      end=seg.words[owner[m.end - 1]].end, original=text[m.start:m.end],
                                      corrected=m.term, kind=kind, score=round(m.score, 3)))
    new_words, k = [], 0
    for w in seg.words:
        new_words.append(replace(w, text="".join(chars[k:k + len(w.text)])))
        k += len(w.text)
    new_text = seg.text
    for c in corrections:  # the segment text may hold punctuation the words lack
        if c.original not in new_text:  # spaced differently: rebuild it from the words
            new_text = join_words(w.text for w in new_words)
            break
        new_text = new_text.replace(c.original, c.corrected, 1)
    return replace(seg, words=tuple(new_words), text=new_text), corrections


def correct_segment(seg: Segment, first_seq: int = 0, source: str | None = None) -> tuple[Segment, list[Correction]]:
    """Near-homophone correction of one segment (see `apply_matches`)."""
    if not seg.words or not _HAN.search(seg.text):
        return seg, []
    text, _, probs, joined = segment_characters(seg)
    matches = find_corrections(text, probs, joined, source)
    if not matches:
        return seg, []
    return apply_matches(seg, matches, "homophone", first_seq)


