"""Server-side SVG: the escalation timeline of a call and the dashboard's bar charts.

Drawn here rather than embedding the pipeline's plot file so that labels are in the page's
language, sized to the page, and placed so they never overlap (each flag label takes the
next free row above the curve); every point and bar links to the data behind it.
"""
from __future__ import annotations

from html import escape

from pipeline.records import Role

from .labels import label
from .timefmt import mmss

COLOURS = {Role.CUSTOMER: "#c62828", Role.AGENT: "#1565c0", Role.UNKNOWN: "#757575"}


def escalation_svg(turns: list[dict], duration: float, call_id: str, link_turns: bool = True) -> str:
    w, h, left, right, top, bottom = 760, 336, 44, 16, 84, 50
    duration = max(duration or 0, max((t["end"] or 0 for t in turns), default=0), 1.0)
    x = lambda t: left + (w - left - right) * t / duration  # noqa: E731
    y = lambda s: h - bottom - (h - top - bottom) * (s or 0) / 100  # noqa: E731
    out = [f'<svg class="timeline" role="img" aria-label="Escalation over the call {escape(call_id)}" '
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
    out.append(f'<text x="{w - right}" y="{h - 6}" text-anchor="end" fill="#555">time in call · 通话时间</text>')
    out.append('<text x="4" y="18" fill="#555">escalation 0-100 · 情绪升级</text>')  # legend line; flags go below
    legend_x = w - right - 300
    for i, role in enumerate((Role.CUSTOMER, Role.AGENT)):
        out.append(f'<line x1="{legend_x + i * 150}" x2="{legend_x + i * 150 + 18}" y1="14" y2="14" '
                   f'stroke="{COLOURS[role]}" stroke-width="3"/>')
        out.append(f'<text x="{legend_x + i * 150 + 24}" y="18" fill="{COLOURS[role]}">{escape(label("roles", role))}</text>')
    for role in (Role.AGENT, Role.CUSTOMER):
        pts = [((t["start"] + t["end"]) / 2, t["score"], t) for t in turns if t["role"] == role and t["score"] is not None]
        if len(pts) > 1:
            out.append(f'<polyline fill="none" stroke="{COLOURS[role]}" stroke-width="2" points="'
                       + " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b, _ in pts) + '"/>')
        for a, b, turn in pts:
            dot = (f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="5" fill="{COLOURS[role]}">'
                   f'<title>{escape(label("roles", role))} {mmss(turn["start"])}: {b:.0f}/100</title></circle>')
            out.append(f'<a href="/calls/{escape(call_id)}?t={turn["start"]:.1f}#turn-{turn["seq"]}">{dot}</a>'
                       if link_turns else dot)
    # Flag labels: each goes on the first row (from the top band down) where it does not touch another.
    rows_used: list[list[tuple[float, float]]] = [[], [], []]
    for turn in sorted((t for t in turns if t.get("flags")), key=lambda t: t["start"]):
        text = "⚑ " + ", ".join(label("flags", f) for f in turn["flags"])
        width = sum(12 if ord(ch) > 0x2e80 else 7 for ch in text) + 6  # CJK glyphs are about twice as wide
        at = x((turn["start"] + turn["end"]) / 2)  # where the turn's point is drawn
        x0 = min(max(at - 6, left), w - right - width)
        for r, used in enumerate(rows_used):
            if all(x0 + width < a or x0 > b for a, b in used):
                used.append((x0, x0 + width))
                ty = 42 + 14 * r
                out.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{ty + 3}" '
                           f'y2="{y(turn["score"]):.1f}" stroke="#c62828" stroke-dasharray="2,2"/>')
                out.append(f'<text x="{x0:.1f}" y="{ty}" fill="#b71c1c">{escape(text)}</text>')
                break
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(title: str, bars: list[tuple[str, float | None, str]], unit: str = "") -> str:
    """Horizontal bars (label, value, link): one per group; the value is printed beside each bar."""
    bar_h, gap, label_w, w = 20, 6, 130, 460
    h = 28 + len(bars) * (bar_h + gap) + 4
    top = max((v or 0 for _, v, _ in bars), default=0) or 1
    out = [f'<svg class="bars" role="img" aria-label="{escape(title)}" viewBox="0 0 {w} {h}" '
           f'xmlns="http://www.w3.org/2000/svg" font-size="12">',
           f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    for i, (name, value, href) in enumerate(bars):
        y0 = 28 + i * (bar_h + gap)
        length = (w - label_w - 70) * (value or 0) / top
        shown = "—" if value is None else (f"{value:.0f}{unit}" if float(value).is_integer() else f"{value:.1f}{unit}")
        name_text = name if len(name) <= 18 else name[:17] + "…"
        out.append(f'<a href="{escape(href)}"><title>{escape(name)}: {shown}</title>'
                   f'<text x="{label_w - 6}" y="{y0 + 14}" text-anchor="end">{escape(name_text)}</text>'
                   f'<rect x="{label_w}" y="{y0}" width="{max(length, 1):.1f}" height="{bar_h}" fill="#1565c0"/>'
                   f'<text x="{label_w + length + 6:.1f}" y="{y0 + 14}">{shown}</text></a>')
    out.append("</svg>")
    return "\n".join(out)
