"""Is a call a bank or insurance service call? The vocabulary corrects only where it is.

Correction and rescoring move what Whisper wrote towards banking terms. In a service call that
is what was said; in any other conversation (a meeting recorded by mistake, a personal call on
a work line) the near-homophones are ordinary words, and a change writes a complaint term nobody
said (a rescoring of 销售问题 into 销售误导 in a meeting was seen on recordings outside the
project) that can raise a flag.

The evidence is the call's own Mandarin: the banking terms of the vocabulary (EVIDENCE: cards,
accounts, loans, regulators...; not its words of complaint and service, 理解, 抱歉, 领导, 媒体,
which any conversation says) as Whisper wrote them, before any correction; a bank's own
vocabulary adds its terms of those categories to the packaged ones, never takes them away. In
service speech such a term is written every CHARS_PER_TERM Han characters; taking
terms as a Poisson process, a service call of n characters holds none with probability
exp(-n / CHARS_PER_TERM). When that is under MISS_PROBABILITY the call is taken as no service
call and its text is left as Whisper wrote it. A short call with no term is too little evidence
either way and is corrected as before (a service line of 20 characters holds no term 47% of
the time).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.records import Transcript
from pipeline.vocabulary.terms import vocabulary, written_terms

_HAN = re.compile(r"[\u4e00-\u9fff]")

# The vocabulary's categories that only banking and insurance speech uses.
EVIDENCE = frozenset({"bank", "bank_hotline", "card", "account", "freeze", "transfer", "fee", "loan", "credit",
                      "wealth", "insurance", "regulator"})
# Han characters per banking term written in bank service speech: the seen half of the finance
# customer-service lines of ../shared/audio, 608 characters and 23 terms as Whisper wrote them
# (the held-out half: 681 and 29, 23.5; the Mandarin dev and sample calls 17-30).
# `python -m evaluation.eval_asr --domain`.
CHARS_PER_TERM = 26.4
# A service call is taken for another conversation at most this often: 1 in 100. With the rate
# above, 122 Han characters (half a minute of speech) without a single banking term.
MISS_PROBABILITY = 0.01


@dataclass(frozen=True)
class Domain:
    service: bool
    terms: tuple[str, ...]  # distinct banking terms written in the call's Mandarin
    characters: int  # Han characters in the call's Mandarin
    p_no_term: float  # how likely a service call of this length would hold no term

    def to_dict(self) -> dict:
        return {"service": self.service, "terms": list(self.terms), "characters": self.characters,
                "p_no_term_if_service": round(self.p_no_term, 4)}


@lru_cache(maxsize=4)
def _evidence(source: str | None) -> frozenset[str]:
    own = {t.text for t in vocabulary(source) if t.category in EVIDENCE} if source is not None else set()
    return frozenset({t.text for t in vocabulary() if t.category in EVIDENCE} | own)


def banking_terms(text: str, source: str | None = None) -> list[str]:
    """The banking terms `text` holds as written, every occurrence (the evidence of `call_domain`);
    with a bank's vocabulary, its own terms found too."""
    evidence = _evidence(source)
    found = [t for t in written_terms(text) if t in evidence]
    return found + ([t for t in written_terms(text, source) if t in evidence] if source is not None else [])


def call_domain(transcript: Transcript, source: str | None = None) -> Domain:
    """Whether the vocabulary should correct this call (`source`: the policy's vocabulary text)."""
    text = "".join(seg.text for seg in transcript.segments if (seg.language or transcript.language) == "zh")
    characters = len(_HAN.findall(text))
    terms = tuple(dict.fromkeys(banking_terms(text, source)))
    p_no_term = math.exp(-characters / CHARS_PER_TERM)
    return Domain(bool(terms) or p_no_term >= MISS_PROBABILITY, terms, characters, p_no_term)
