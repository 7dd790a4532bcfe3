"""Exports from the index: CSV / JSON rows with scores and review state, `.txt` captions (kohya
style, comma separated, character tags first, the WD options applied) and XMP sidecars carrying
the keywords where digiKam, Lightroom and immich read them (`dc:subject`, `lr:hierarchicalSubject`),
merged into an existing sidecar without losing what other tools wrote there.

Sidecars keep the tag command's `--overwrite` meaning: an existing sidecar is left alone unless
`overwrite`; with it, a `.txt` is replaced and an `.xmp` is merged (other tools' fields and
keywords stay, ours are added).
"""

from __future__ import annotations

import csv
import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from .. import access
from ..classify.labels import display_name
from ..errors import ConfigError
from ..staging import write_text
from .index import OK, reading
from .review import KEPT, image_tags

FORMATS = ("csv", "json", "txt", "xmp")
CSV_HEADER = ["path", "label", "category", "score", "state", "changed"]

NS = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
      "dc": "http://purl.org/dc/elements/1.1/", "lr": "http://ns.adobe.com/lightroom/1.0/"}
XPACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
XPACKET_END = '\n<?xpacket end="w"?>\n'
KEYWORD_ROOT = "imgai"     # lr:hierarchicalSubject entries: imgai|<category>|<tag> (imgai|<tag> without one)


def _images(conn, folder: str | None) -> list[tuple[int, str]]:
    sql, args = "SELECT id, path FROM images WHERE status = ?", [OK]
    if folder:
        prefix = str(Path(folder).expanduser().resolve()).rstrip(os.sep) + os.sep
        sql += " AND substr(path, 1, ?) = ?"
        args += [len(prefix), prefix]
    return conn.execute(sql + " ORDER BY path", args).fetchall()


def library_rows(*, folder: str | None = None, model_id: str | None = None, include_below: bool = False,
                 actor=None) -> list[dict]:
    """One row per (image, tag): path, label, category, score, review state, changed-since-decision."""
    access.check(actor, "library")
    with reading() as conn:
        images = _images(conn, folder)
        tags = image_tags(conn, [i for i, _ in images], model_id=model_id, include_below=include_below)
    return [dict(path=path, label=t.label, category=t.category, score=t.score, state=t.state, changed=t.changed)
            for image_id, path in images for t in tags[image_id]]


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    for r in rows:
        w.writerow([r["path"], r["label"], r["category"] or "", "" if r["score"] is None else f"{r['score']:.6f}",
                    r["state"], int(r["changed"])])
    return buf.getvalue()


def kept_tags(*, folder: str | None = None, model_id: str | None = None, reviewed_only: bool = False,
              conn=None) -> dict[str, list]:
    """path → the tags that are the image's (accepted by score or by a person, or added), best first;
    `reviewed_only`: only those a person accepted or added."""
    from .review import BY_PERSON, ACCEPT, ADD

    def read(c):
        images = _images(c, folder)
        tags = image_tags(c, [i for i, _ in images], model_id=model_id)
        wanted = (BY_PERSON[ACCEPT], BY_PERSON[ADD]) if reviewed_only else KEPT
        return {path: [t for t in tags[i] if t.state in wanted] for i, path in images}
    if conn is not None:
        return read(conn)
    with reading() as c:
        return read(c)


def caption(tags, *, underscores_to_spaces: bool = False, exclude_tags=()) -> str:
    """kohya-style caption: character tags first, then the rest, each by score; ratings left out."""
    names = [t for t in tags if t.category != "rating"]
    ordered = [t for t in names if t.category == "character"] + [t for t in names if t.category != "character"]
    excluded = set(exclude_tags) | {display_name(t, underscores_to_spaces=True) for t in exclude_tags}
    shown = [display_name(t.label, underscores_to_spaces=underscores_to_spaces) for t in ordered
             if t.label not in excluded and display_name(t.label, underscores_to_spaces=True) not in excluded]
    return ", ".join(shown) + "\n"


def export(fmt: str, *, output: str | Path | None = None, folder: str | None = None, model_id: str | None = None,
           reviewed_only: bool = False, include_below: bool = False, overwrite: bool = False,
           underscores_to_spaces: bool = False, exclude_tags=(), actor=None) -> dict:
    """Write an export. csv/json: to `output` (a file) and return {"rows", "text"}; txt/xmp: a sidecar
    next to each image, returning {"written", "kept existing"} counts."""
    access.check(actor, "library")
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    if isinstance(exclude_tags, str):
        exclude_tags = tuple(t.strip() for t in exclude_tags.split(",") if t.strip())
    if fmt in ("csv", "json"):
        rows = library_rows(folder=folder, model_id=model_id, include_below=include_below, actor=actor)
        text = to_csv(rows) if fmt == "csv" else json.dumps(rows, indent=2, ensure_ascii=False)
        if output:
            write_text(Path(output), text)
        return {"rows": len(rows), "text": None if output else text}
    outcome = {"written": 0, "kept existing": 0}
    for path, tags in kept_tags(folder=folder, model_id=model_id, reviewed_only=reviewed_only).items():
        target = Path(path).with_suffix(f".{fmt}")
        if target.exists() and not overwrite:
            outcome["kept existing"] += 1
            continue
        if fmt == "txt":
            text = caption(tags, underscores_to_spaces=underscores_to_spaces, exclude_tags=exclude_tags)
        else:
            labels = [display_name(t.label, underscores_to_spaces=underscores_to_spaces) for t in tags
                      if t.category != "rating"]
            hierarchy = ["|".join([KEYWORD_ROOT, *([t.category] if t.category else []), name])
                         for t, name in zip([t for t in tags if t.category != "rating"], labels)]
            text = merge_xmp(target.read_text(encoding="utf-8") if target.exists() else None, labels, hierarchy)
        write_text(target, text)
        outcome["written"] += 1
    return outcome


# -- XMP ---------------------------------------------------------------------------------------

def merge_xmp(existing: str | None, subjects: list[str], hierarchy: list[str]) -> str:
    """An XMP packet with `subjects` in dc:subject and `hierarchy` in lr:hierarchicalSubject, added to
    what `existing` holds (other tools' properties, namespaces and keywords kept)."""
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    if existing and existing.strip():
        for prefix, uri in _declared_namespaces(existing):
            if prefix and prefix not in NS:
                ET.register_namespace(prefix, uri)
        try:
            root = ET.fromstring(existing.encode("utf-8"))
        except ET.ParseError as exc:
            raise ConfigError(f"the existing XMP sidecar is not valid XML ({exc}); fix or move it, then export again")
    else:
        root = ET.Element(f"{{{NS['x']}}}xmpmeta")
    if root.tag == f"{{{NS['rdf']}}}RDF":
        rdf = root
    else:
        rdf = root.find(f"{{{NS['rdf']}}}RDF")
        if rdf is None:
            rdf = ET.SubElement(root, f"{{{NS['rdf']}}}RDF")
    _add_bag(rdf, f"{{{NS['dc']}}}subject", subjects)
    _add_bag(rdf, f"{{{NS['lr']}}}hierarchicalSubject", hierarchy)
    body = ET.tostring(root, encoding="unicode")
    return XPACKET_BEGIN + body + XPACKET_END


def _declared_namespaces(text: str) -> list[tuple[str, str]]:
    found = []
    for event, item in ET.iterparse(io.BytesIO(text.encode("utf-8")), events=("start-ns",)):
        found.append(item)
    return found


def _add_bag(rdf, prop: str, values: list[str]) -> None:
    """Add `values` to the rdf:Bag of `prop` (made in an rdf:Description when missing), no repeats."""
    element = None
    for description in rdf.findall(f"{{{NS['rdf']}}}Description"):
        element = description.find(prop)
        if element is not None:
            break
    if element is None:
        descriptions = rdf.findall(f"{{{NS['rdf']}}}Description")
        description = descriptions[0] if descriptions else ET.SubElement(
            rdf, f"{{{NS['rdf']}}}Description", {f"{{{NS['rdf']}}}about": ""})
        element = ET.SubElement(description, prop)
    bag = element.find(f"{{{NS['rdf']}}}Bag")
    if bag is None:
        bag = ET.SubElement(element, f"{{{NS['rdf']}}}Bag")
    have = [li.text for li in bag.findall(f"{{{NS['rdf']}}}li")]
    for value in values:
        if value not in have:
            ET.SubElement(bag, f"{{{NS['rdf']}}}li").text = value
            have.append(value)
