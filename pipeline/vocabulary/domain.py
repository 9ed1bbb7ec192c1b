"""Is a call a bank or insurance service call? The vocabulary corrects only where it is.

Correction and rescoring move what Whisper wrote towards banking terms. In a service call that
is what was said; in any other conversation (a meeting recorded by mistake, a personal call on
a work line) the near-homophones are ordinary words, and a change writes a complaint term nobody
said (a rescoring of 销售问题 into 销售误导 in a meeting was seen on recordings outside the
project) that can raise a flag.

The evidence is the call's own Mandarin: the vocabulary's terms as Whisper wrote them, before
any correction. In service speech a term is written every CHARS_PER_TERM Han characters; taking
terms as a Poisson process, a service call of n characters holds none with probability
exp(-n / CHARS_PER_TERM). When that is under MISS_PROBABILITY the call is taken as no service
call and its text is left as Whisper wrote it. A short call with no term is too little evidence
either way and is corrected as before (a service line of 20 characters holds no term 61% of
the time).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipeline.records import Transcript
from pipeline.vocabulary.terms import written_terms

_HAN = re.compile(r"[\u4e00-\u9fff]")

# Han characters per written vocabulary term in service speech: the seen half of ../shared/audio
# (customer-service lines, finance and general), 1,059 characters and 26 terms as Whisper wrote
# them (the held-out half: 1,268 and 31, 40.9). `python -m evaluation.eval_asr --domain`.
CHARS_PER_TERM = 40.7
# A service call is taken for another conversation at most this often: 1 in 100. With the rate
# above, 187 Han characters (about a minute of one voice) without a single term.
MISS_PROBABILITY = 0.01


@dataclass(frozen=True)
class Domain:
    service: bool
    terms: tuple[str, ...]  # distinct vocabulary terms written in the call's Mandarin
    characters: int  # Han characters in the call's Mandarin
    p_no_term: float  # how likely a service call of this length would hold no term

    def to_dict(self) -> dict:
        return {"service": self.service, "terms": list(self.terms), "characters": self.characters,
                "p_no_term_if_service": round(self.p_no_term, 4)}


def call_domain(transcript: Transcript, source: str | None = None) -> Domain:
    """Whether the vocabulary should correct this call (`source`: the policy's vocabulary text)."""
    text = "".join(seg.text for seg in transcript.segments if (seg.language or transcript.language) == "zh")
    characters = len(_HAN.findall(text))
    terms = tuple(dict.fromkeys(written_terms(text, source)))
    p_no_term = math.exp(-characters / CHARS_PER_TERM)
    return Domain(bool(terms) or p_no_term >= MISS_PROBABILITY, terms, characters, p_no_term)
