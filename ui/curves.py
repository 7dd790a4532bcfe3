"""Training curves as a small inline SVG: a point for every epoch (so epoch 1 is visible on its
own), lines between them, whole-number epoch ticks, and a legend. Pure display, no imgai calls."""

from __future__ import annotations

from html import escape

import pandas as pd

W, H, LEFT, RIGHT, TOP, BOTTOM = 520, 240, 52, 16, 28, 40
COLOURS = {"train": "#2563eb", "validation": "#ea580c"}


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi - lo < 1e-12:
        return [lo]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def svg_chart(frame: pd.DataFrame, title: str, *, percent: bool = False) -> str:
    """`frame` has columns epoch, value, series (long format, as curve_frames makes it)."""
    if frame.empty:
        return (f'<div class="imgai-chart"><b>{escape(title)}</b><br><span style="opacity:.7">'
                "Curves appear after the first epoch.</span></div>")
    epochs = sorted({int(e) for e in frame["epoch"]})
    x_max = max(epochs[-1], 2)
    lo, hi = float(frame["value"].min()), float(frame["value"].max())
    if percent:
        lo, hi = 0.0, 1.0
    elif hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    else:
        pad = (hi - lo) * 0.08
        lo, hi = max(0.0, lo - pad), hi + pad

    def x(e: float) -> float:
        return LEFT + (e - 1) / (x_max - 1) * (W - LEFT - RIGHT)

    def y(v: float) -> float:
        return TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM)

    parts = [f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{escape(title)}" '
             'style="max-width:640px;font:11px sans-serif">',
             f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold" font-size="13">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#999"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#999"/>']
    step = max(1, len(range(1, x_max + 1)) // 10)
    for e in range(1, x_max + 1, step):
        parts.append(f'<text x="{x(e):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{e}</text>')
    parts.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" text-anchor="middle">epoch</text>')
    for v in _ticks(lo, hi):
        label = f"{v:.0%}" if percent else f"{v:.3g}"
        parts.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{W - RIGHT}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{label}</text>')
    for i, (series, rows) in enumerate(frame.groupby("series", sort=False)):
        colour = COLOURS.get(series, "#16a34a")
        points = [(x(float(e)), y(float(v))) for e, v in zip(rows["epoch"], rows["value"])]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}" class="point"/>' for px, py in points]
        lx = W - RIGHT - 170 + i * 85
        parts.append(f'<rect x="{lx}" y="{TOP - 4}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{TOP + 5}">{escape(str(series))}</text>')
    parts.append("</svg>")
    return "".join(parts)
