"""Training curves as a small inline SVG: a point for every epoch (so epoch 1 is visible on its
own), lines between them, whole-number epoch ticks, and a legend. A string of markup, no plotting
library: the Train tab shows it in an HTML block, and tests read it as text."""

from __future__ import annotations

from html import escape

W, H, LEFT, RIGHT, TOP, BOTTOM = 520, 240, 52, 16, 28, 40
COLOURS = {"train": "#2563eb", "validation": "#ea580c"}
EMPTY = "Curves appear after the first epoch."

Point = tuple[float, float, str]    # (epoch, value, series), as imgai.presentation.train.curve_points makes them


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi - lo < 1e-12:
        return [lo]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def _value_range(values: list[float], percent: bool) -> tuple[float, float]:
    """The y axis: 0–1 for a percentage, else the values with a little room (never below 0)."""
    lo, hi = min(values), max(values)
    if percent:
        return 0.0, 1.0
    if hi - lo < 1e-9:
        return lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.08
    return max(0.0, lo - pad), hi + pad


def _series(points: list[Point]) -> dict[str, list[tuple[float, float]]]:
    """(epoch, value) per series, the series in the order they first appear."""
    found: dict[str, list[tuple[float, float]]] = {}
    for epoch, value, series in points:
        found.setdefault(series, []).append((float(epoch), float(value)))
    return found


def svg_chart(points: list[Point], title: str, *, percent: bool = False) -> str:
    """The chart of `points` titled `title` (values as percentages when `percent`); before the
    first epoch, a line that says the curves are coming."""
    if not points:
        return (f'<div class="imgai-chart"><b>{escape(title)}</b><br><span style="opacity:.7">'
                f"{EMPTY}</span></div>")
    x_max = max(max(int(e) for e, _, _ in points), 2)
    lo, hi = _value_range([float(v) for _, v, _ in points], percent)

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
    for i, (series, values) in enumerate(_series(points).items()):
        colour = COLOURS.get(series, "#16a34a")
        xy = [(x(e), y(v)) for e, v in values]
        if len(xy) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in xy)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}" class="point"/>' for px, py in xy]
        lx = W - RIGHT - 170 + i * 85
        parts.append(f'<rect x="{lx}" y="{TOP - 4}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{TOP + 5}">{escape(str(series))}</text>')
    parts.append("</svg>")
    return "".join(parts)
