"""Tag results as files: JSON and CSV for programs, a text table for people, and sidecars
(`.txt` comma-separated tags for dataset-captioning tools, `.xmp` dc:subject for photo managers)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape

from ..errors import ConfigError
from .tag import TagResult

SIDECAR_KINDS = ("txt", "xmp")


def to_json(results: Iterable[TagResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False)


CSV_HEADER = ["path", "rank", "label", "score", "error"]


def csv_rows(result: TagResult) -> list[list]:
    """The CSV rows of one image: one per tag, or one row with the error (or no tag)."""
    if result.error or not result.tags:
        return [[result.path, "", "", "", result.error or ""]]
    return [[result.path, rank, t.label, f"{t.score:.6f}", ""] for rank, t in enumerate(result.tags, 1)]


def to_csv(results: Iterable[TagResult]) -> str:
    """One row per (image, tag): path, rank, label, score, error."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    for r in results:
        w.writerows(csv_rows(r))
    return buf.getvalue()


TABLE_HEADER = ("IMAGE", "TAGS")


def to_table(results: Iterable[TagResult]) -> str:
    """Results as a table for people: a header, then one aligned row per image (its path as given)."""
    rows = []
    for r in results:
        shown = r.error and f"ERROR {r.error}" or ", ".join(f"{t.label} ({t.score:.3f})" for t in r.tags) or "(no tag above threshold)"
        rows.append((str(r.path), shown))
    width = max([len(TABLE_HEADER[0])] + [len(path) for path, _ in rows])
    return "".join(f"{path.ljust(width)}  {shown}\n" for path, shown in [TABLE_HEADER, *rows])


def sidecar_path(image: Path, kind: str) -> Path:
    return Path(image).with_suffix(f".{kind}")


def xmp_packet(labels: list[str]) -> str:
    items = "\n".join(f"     <rdf:li>{escape(label)}</rdf:li>" for label in labels)
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="imgai">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
            '   <dc:subject>\n    <rdf:Bag>\n' + items + '\n    </rdf:Bag>\n   </dc:subject>\n'
            '  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>\n')


def caption_order(tags) -> list[str]:
    """Labels for a caption: character tags first (as captioning tools expect), then the rest, each by score."""
    return [t.label for t in tags if t.category == "character"] + [t.label for t in tags if t.category != "character"]


def write_sidecars(results: Iterable[TagResult], kind: str, *, overwrite: bool = False) -> dict[str, str]:
    """Write a sidecar next to each tagged image. Returns {image: "written" | "kept existing"}."""
    if kind not in SIDECAR_KINDS:
        raise ConfigError(f"sidecar {kind!r} is not one of {', '.join(SIDECAR_KINDS)}")
    outcome = {}
    for r in results:
        if r.error:
            continue
        target = sidecar_path(Path(r.path), kind)
        if target.exists() and not overwrite:
            outcome[r.path] = "kept existing"
            continue
        labels = caption_order(r.tags)
        text = ", ".join(labels) + "\n" if kind == "txt" else xmp_packet(labels)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        outcome[r.path] = "written"
    return outcome
