"""The escalation chart of a call, drawn once for both readers: the web app's call and briefing
pages, and the plot file written beside the database for each processed call (linked from the
Markdown briefing). Server-side SVG, labels placed so they never overlap (each flag label takes
the next free row above the curve)."""
from __future__ import annotations

import hashlib
import re
from html import escape
from pathlib import Path

from pipeline.analysis.i18n import language_of, mmss, name, text
from pipeline.records import CallResult, Role

COLOURS = {Role.CUSTOMER: "#c62828", Role.AGENT: "#1565c0", Role.UNKNOWN: "#757575"}


def escalation_svg(turns: list[dict], duration: float, call_id: str, link_turns: bool = True,
                   language: str = "en") -> str:
    """The escalation timeline of a call: each turn's score at its middle, one line per role,
    flag labels on free rows above the curve. `turns`: dicts with seq, role, start, end, score
    and flags; every word on it is in `language` (the reader's: translations.json); with
    `link_turns`, every point links to its turn on the call page."""
    label = lambda group, code: name(group, code, language)  # noqa: E731
    w, h, left, right, top, bottom = 760, 336, 44, 16, 84, 50
    duration = max(duration or 0, max((t["end"] or 0 for t in turns), default=0), 1.0)
    x = lambda t: left + (w - left - right) * t / duration  # noqa: E731
    y = lambda s: h - bottom - (h - top - bottom) * (s or 0) / 100  # noqa: E731
    out = [f'<svg class="timeline" role="img" aria-label="{escape(text("plot.aria", language, call=call_id))}" '
           f'viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="#fff"/>']
    for s in (0, 25, 50, 75, 100):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(s):.1f}" y2="{y(s):.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{left - 6}" y="{y(s) + 4:.1f}" text-anchor="end" fill="#555">{s}</text>')
    step = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 1e9) if duration / s <= 10)
    t = 0.0
    while t <= duration:
        out.append(f'<text x="{x(t):.1f}" y="{h - bottom + 18}" text-anchor="middle" fill="#555">{mmss(t)}</text>')
        t += step
    out.append(f'<text x="{w - right}" y="{h - 6}" text-anchor="end" fill="#555">{escape(text("plot.time", language))}</text>')
    out.append(f'<text x="4" y="18" fill="#555">{escape(text("plot.escalation", language))}</text>')  # flags go below
    legend_x = w - right - 300
    for i, role in enumerate((Role.CUSTOMER, Role.AGENT)):
        out.append(f'<line x1="{legend_x + i * 150}" x2="{legend_x + i * 150 + 18}" y1="14" y2="14" '
                   f'stroke="{COLOURS[role]}" stroke-width="3"/>')
        out.append(f'<text x="{legend_x + i * 150 + 24}" y="18" fill="{COLOURS[role]}">{escape(label("role", role))}</text>')
    for role in (Role.AGENT, Role.CUSTOMER):
        pts = [((t["start"] + t["end"]) / 2, t["score"], t) for t in turns if t["role"] == role and t["score"] is not None]
        if len(pts) > 1:
            out.append(f'<polyline fill="none" stroke="{COLOURS[role]}" stroke-width="2" points="'
                       + " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b, _ in pts) + '"/>')
        for a, b, turn in pts:
            dot = (f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="5" fill="{COLOURS[role]}">'
                   f'<title>{escape(label("role", role))} {mmss(turn["start"])}: {b:.0f}/100</title></circle>')
            out.append(f'<a href="/calls/{escape(call_id)}?t={turn["start"]:.1f}#turn-{turn["seq"]}">{dot}</a>'
                       if link_turns else dot)
    # Flag labels: each goes on the first row (from the top band down) where it does not touch another.
    rows_used: list[list[tuple[float, float]]] = [[], [], []]
    for turn in sorted((t for t in turns if t.get("flags")), key=lambda t: t["start"]):
        tag = "⚑ " + text("punct.comma", language).join(label("flag", f) for f in turn["flags"])
        width = sum(12 if ord(ch) > 0x2e80 else 7 for ch in tag) + 6  # CJK glyphs are about twice as wide
        at = x((turn["start"] + turn["end"]) / 2)  # where the turn's point is drawn
        x0 = min(max(at - 6, left), w - right - width)
        for r, used in enumerate(rows_used):
            if all(x0 + width < a or x0 > b for a, b in used):
                used.append((x0, x0 + width))
                ty = 42 + 14 * r
                out.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{ty + 3}" '
                           f'y2="{y(turn["score"]):.1f}" stroke="#c62828" stroke-dasharray="2,2"/>')
                out.append(f'<text x="{x0:.1f}" y="{ty}" fill="#b71c1c">{escape(tag)}</text>')
                break
    out.append("</svg>")
    return "\n".join(out)


def plot_name(call_id: str) -> str:
    """A file name made from a call id that cannot leave the plots folder, unique per id."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(call_id)).strip("_")[:80] or "call"
    return f"{safe}-{hashlib.sha256(str(call_id).encode()).hexdigest()[:8]}"


def write_call_plot(result: CallResult, folder: Path, reported_flags) -> Path | None:
    """Draw a processed call's escalation chart into `folder` (the database's plots/); None for a
    call without escalation. `reported_flags`: the lexicon categories shown as a turn's flags."""
    esc = result.escalation
    if esc is None:
        return None
    scores = {t.turn_index: t for t in esc.turns}
    reported = set(reported_flags)
    turns = []
    for i, t in enumerate(result.turns):
        scored = scores.get(i)
        turns.append({"seq": i, "role": t.role, "start": t.start, "end": t.end,
                      "score": scored.score if scored else None,
                      "flags": [c for c in (scored.features.categories if scored else ()) if c in reported]})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{plot_name(result.call_id)}.svg"
    language = language_of(result.transcript.language if result.transcript else None)  # the briefing's
    path.write_text(escalation_svg(turns, result.recording.duration or 0, result.call_id, link_turns=False,
                                   language=language),
                    encoding="utf-8")
    return path
