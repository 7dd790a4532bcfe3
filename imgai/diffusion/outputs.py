"""What the converted-models folder holds: the finished targets, each with its file tree, its
`quantization_info.json`, its card and its check images (what the Quantize tab shows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import paths
from ..errors import UnknownModelError
from .info import read_info
from .resources import fmt_bytes

STAGING_PREFIX = ".imgai-tmp-"     # a target being written (or an old one being replaced): never an output


@dataclass
class ConvertedOutput:
    name: str
    path: Path
    info: dict
    card: str                                   # README.md text
    tree: str                                   # one line per file, with sizes
    images: list = field(default_factory=list)  # [(path, caption)], original/converted pairs


def list_outputs(output_dir: Path | None = None) -> list[str]:
    """Finished targets (folders with a quantization_info.json), newest first."""
    folder = Path(output_dir) if output_dir else paths().converted
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and not p.name.startswith(STAGING_PREFIX) and (p / "quantization_info.json").is_file()]
    return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def file_tree(folder: Path) -> str:
    lines = [f"{folder.name}/"]
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        indent = "    " * (len(rel.parts) - 1)
        lines.append(f"{indent}├── {p.name}/" if p.is_dir() else f"{indent}├── {p.name}  ({fmt_bytes(p.stat().st_size)})")
    return "\n".join(lines)


def card_preview(card: str) -> str:
    """The card as a page shows it: the YAML header as a code block (not run-on text), and images
    named by their file (they are in the output's check/ folder, shown beside the card)."""
    import re

    header, body = "", card
    m = re.match(r"\A---\n(.*?)\n---\n", card, re.DOTALL)
    if m:
        header, body = m[1], card[m.end():]
    body = re.sub(r"!\[([^\]]*)\]\((?!https?://)([^)]+)\)", r"*(image `\2`: see Images)*", body)
    return (f"```yaml\n{header}\n```\n\n" if header else "") + body.lstrip()


def describe_output(name: str, *, output_dir: Path | None = None) -> ConvertedOutput:
    """One finished target by folder name (never a path: the name cannot leave the output folder)."""
    folder = Path(output_dir) if output_dir else paths().converted
    if not name or "/" in name or "\\" in name or name.startswith(".") or not (folder / name).is_dir():
        raise UnknownModelError(f"no converted model {name!r} in {folder}; run a conversion first")
    path = folder / name
    info = read_info(path) or {}
    card = (path / "README.md").read_text(encoding="utf-8") if (path / "README.md").is_file() else ""
    images = []
    check = info.get("check", {})
    for i in range(len(check.get("psnr_db", []))):
        for label in ("original", "converted"):
            img = path / "check" / f"{label}_{i}.png"
            if img.is_file():
                caption = f"prompt {i}: {label}" + (
                    f" — PSNR {check['psnr_db'][i]:.1f} dB, SSIM {check['ssim'][i]:.4f}" if label == "converted" else "")
                images.append((str(img), caption))
    return ConvertedOutput(name=name, path=path, info=info, card=card, tree=file_tree(path), images=images)
