"""Server-side SVG bar charts of the dashboard; every bar links to the calls behind it. (The
escalation timeline is pipeline.outputs.plots, shared with the plot files the pipeline writes.)"""
from __future__ import annotations

from html import escape


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
