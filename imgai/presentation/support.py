"""The support sweep's table in words: what `imgai hub families`, the Browse tab and the README's
generated table show (one function, so they cannot drift apart)."""

from __future__ import annotations

from ..classify.architectures import SUPPORT, Support

SUPPORT_COLUMNS = ["Family", "Library", "Built", "Result", "Seconds", "Parameters", "Shrunk", "Reason"]


def support_row(row: Support, *, reason_width: int | None = None) -> list[str]:
    reason = row.reason or ""
    if reason_width and len(reason) > reason_width:
        reason = reason[:reason_width - 1] + "…"
    built = row.name if row.library == "transformers" else f"{row.name} ({', '.join(row.patterns)})"
    return [row.family, row.library, built, "pass" if row.passed else "fail", f"{row.seconds:.1f}",
            f"{row.parameters / 1e6:.1f}M" if row.parameters else "", row.shrunk or "", reason]


def support_rows(rows: tuple[Support, ...] = SUPPORT, *, reason_width: int | None = None,
                 passed: bool | None = None) -> list[list[str]]:
    return [support_row(r, reason_width=reason_width) for r in rows if passed is None or r.passed == passed]


def support_totals(rows: tuple[Support, ...] = SUPPORT) -> str:
    """e.g. "109 of 121 candidates pass (transformers 35/45, timm 74/76); 78 families offered"."""
    parts = []
    for library in ("transformers", "timm"):
        mine = [r for r in rows if r.library == library]
        parts.append(f"{library} {sum(r.passed for r in mine)}/{len(mine)}")
    families = {r.family for r in rows if r.passed}
    return (f"{sum(r.passed for r in rows)} of {len(rows)} candidates pass ({', '.join(parts)}); "
            f"{len(families)} families offered")
