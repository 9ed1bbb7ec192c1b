"""Words to speakers to turns.

Each word goes to the speaker whose segments overlap it most (interval lookups with
searchsorted, not a loop over every segment: WhisperX's nested loop was its own bottleneck);
a word in no segment goes to the nearest one. Consecutive words of one speaker form a turn.
"""
from __future__ import annotations

import numpy as np

from pipeline.records import Diarization, Turn, Word, join_words

# A pause longer than this inside one speaker's speech starts a new turn.
TURN_GAP = 2.0


def assign_speakers(words: list[Word], diarization: Diarization) -> list[str | None]:
    """The speaker of each word by maximum time overlap (nearest segment when none overlaps)."""
    segs = sorted(diarization.voice_segments(), key=lambda s: s.start)  # overlap ones: the words are the other's
    if not segs:
        return [None] * len(words)
    starts = np.array([s.start for s in segs])
    ends = np.array([s.end for s in segs])
    # Segments may overlap each other (stereo crosstalk), so a word can meet several: look at
    # those that start before the word ends, back to the longest segment's reach.
    reach = float(np.max(ends - starts))
    out: list[str | None] = []
    for w in words:
        hi = int(np.searchsorted(starts, w.end, side="left"))
        lo = int(np.searchsorted(starts, w.start - reach, side="left"))
        best = None
        per_speaker: dict[str, float] = {}
        for i in range(lo, hi):
            overlap = min(ends[i], w.end) - max(starts[i], w.start)
            if overlap > 0:
                per_speaker[segs[i].speaker] = per_speaker.get(segs[i].speaker, 0.0) + overlap
        if per_speaker:
            best = max(per_speaker, key=per_speaker.get)
        if best is None:  # in a gap: nearest segment edge
            mid = (w.start + w.end) / 2
            dist = np.maximum(starts - mid, 0) + np.maximum(mid - ends, 0)
            best = segs[int(np.argmin(dist))].speaker
        out.append(best)
    return out


def build_turns(words: list[Word], speakers: list[str | None], roles: dict[str, str],
                language: str, gap: float = TURN_GAP) -> tuple[Turn, ...]:
    """Group consecutive words of one speaker into turns with their role."""
    turns: list[Turn] = []
    current: list[Word] = []
    current_speaker: str | None = None

    def close():
        if current:
            text = join_words(w.text for w in current)
            turns.append(Turn(role=roles.get(current_speaker or "", "unknown"), speaker=current_speaker,
                              start=current[0].start, end=current[-1].end, text=text, words=tuple(current),
                              language=language))

    for word, speaker in zip(words, speakers):
        if current and (speaker != current_speaker or word.start - current[-1].end > gap):
            close()
            current = []
        if not current:
            current_speaker = speaker
        current.append(word)
    close()
    return tuple(turns)


def turns_from_segments(segments, roles: dict[str, str], language: str, gap: float = TURN_GAP) -> tuple[Turn, ...]:
    """Turns from speaker-attributed segments (one speaker per stream): consecutive segments of
    one speaker in one language merge (a switch of language starts a new turn, so each turn has
    one language for the stages that read it); turns of different speakers may overlap in time,
    as interruptions do."""
    turns: list[Turn] = []
    for seg in sorted(segments, key=lambda s: s.start):
        if not seg.words:
            continue
        seg_language = seg.language or language
        last = turns[-1] if turns else None
        if last and last.speaker == seg.speaker and last.language == seg_language and seg.start - last.end <= gap:
            turns[-1] = Turn(role=last.role, speaker=last.speaker, start=last.start, end=max(last.end, seg.end),
                             text=join_words([last.text, seg.text]), words=last.words + seg.words,
                             language=seg_language)
        else:
            turns.append(Turn(role=roles.get(seg.speaker or "", "unknown"), speaker=seg.speaker,
                              start=seg.start, end=seg.end, text=seg.text, words=seg.words, language=seg_language))
    return tuple(turns)
