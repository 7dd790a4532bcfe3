"""README's tables of diffusion keys, supported classifier families, trainable architectures,
settings and visitor limits, generated from the registries (`imgai.diffusion.keys.MODEL_KEYS`,
imgai/classify/support_table.json, `imgai.train.architectures.ARCHITECTURES`, `imgai.settings.SETTINGS`,
`imgai.limits.LIMITS`).

    python -m tests.readme_tables --write     # rewrite them in README.md
    pytest tests/test_readme.py                # fails when README.md is stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def diffusion_keys_table() -> str:
    from imgai.diffusion.keys import support_table

    rows = ["| key | upstream repo | pipeline | PyTorch | ONNX | what it is |", "|---|---|---|---|---|---|"]
    rows += [f"| `{r['key']}` | `{r['repo_id']}` | {r['pipeline']} | {r['pytorch']} | {r['onnx']} | {r['summary']} |"
             for r in support_table()]
    return "\n".join(rows)


def architectures_table() -> str:
    from imgai.train.architectures import ARCHITECTURES

    starts = {"cache": "ImageNet weights when in the local HF / torch hub cache, else random",
              "demo": "the embedded demo model's ImageNet weights (offline)"}
    rows = ["| architecture | timm model | family | parameters | image size | starts from |", "|---|---|---|---|---|---|"]
    rows += [f"| `{a.key}` | `{a.timm_name}` | {a.family} | {a.params_m}M | {a.image_size} | {starts[a.weights]} |"
             for a in ARCHITECTURES.values()]
    return "\n".join(rows)


def settings_table() -> str:
    from imgai.settings import SETTINGS

    rows = ["| variable | type | default | what it does |", "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {s.kind} | {f'`{s.default}`' if s.default else '—'} | {s.help} |"
             for s in SETTINGS.values() if not s.internal]
    return "\n".join(rows)


def limits_table() -> str:
    from imgai.limits import LIMITS

    rows = ["| limit | variable | default |", "|---|---|---|"]
    rows += [f"| {lim.what} | `{lim.env}` | {lim.default} |" for lim in LIMITS.values()]
    return "\n".join(rows)


def support_table() -> str:
    from imgai.presentation.support import SUPPORT_COLUMNS, support_rows, support_totals

    def cell(value: str) -> str:
        return value.replace("|", "\\|").replace("\n", " ")

    rows = [f"{support_totals()}.", "", "| " + " | ".join(c.lower() for c in SUPPORT_COLUMNS) + " |",
            "|" + "---|" * len(SUPPORT_COLUMNS)]
    rows += ["| " + " | ".join(cell(v) for v in r) + " |" for r in support_rows(reason_width=160)]
    return "\n".join(rows)


TABLES = {"diffusion-keys": diffusion_keys_table, "support-table": support_table, "train-architectures": architectures_table,
          "settings": settings_table, "visitor-limits": limits_table}


def _block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- generated: {name} .*?-->\n)(.*?)(<!-- end: {name} -->)", re.DOTALL)


def current(text: str, name: str) -> str | None:
    m = _block(name).search(text)
    return m[2].rstrip("\n") if m else None


def render(text: str) -> str:
    for name, make in TABLES.items():
        if current(text, name) is None:
            raise SystemExit(f"README.md has no '<!-- generated: {name} … -->' block")
        text = _block(name).sub(lambda m, t=make(): f"{m[1]}{t}\n{m[3]}", text)
    return text


if __name__ == "__main__":
    fresh = render(README.read_text())
    if "--write" in sys.argv:
        README.write_text(fresh)
    else:
        sys.stdout.write(fresh)
