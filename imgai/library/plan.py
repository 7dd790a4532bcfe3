"""What a tagging run has to do, from one listing of the folders and one query of the index.

A file is
    unchanged   same size and mtime as recorded, and tagged by this model fingerprint at that hash
                (an unreadable file with the same size and mtime too: retried only when it changes)
    new         a path the index has not seen, whose content is not in the index either
    moved       a new path whose content hash the index knows (a rename, a move or a copy):
                its scores and decisions follow it, nothing is tagged again
    changed     size or mtime differ and so does the content hash (the same hash: just touched)
    untagged    known, but not tagged by this model yet (another model tagged it)
    missing     in the index under a listed folder, no longer on disk: marked, not an error

Files are hashed here only when the hash decides what to do before tagging: a known path whose
size or mtime changed (touched or changed?), and a new path whose size some indexed image has (a
move or copy keeps the size). Every other file to tag — new with a size nobody has, or `--force`
— is hashed by the tagging itself, from the bytes it reads to decode (`TagOptions.content_hash`),
so no file is read twice.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..classify.preprocess import content_hasher
from .index import ERROR, MISSING, OK

HASH_CHUNK = 1 << 20


def content_hash(path: str | Path) -> str:
    """The file's content hash (`content_hasher`: blake2b-128 of its bytes), read here for the plan."""
    h = content_hasher()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Item:
    """One file the run has to tag."""
    path: str
    size: int
    mtime_ns: int
    hash: str | None              # None: hashed by the tagging, from the bytes it decodes
    kind: str                     # new | changed | untagged | forced


@dataclass
class Plan:
    fingerprint: str
    listed: list[str] = field(default_factory=list)          # every file found, in listing order
    to_tag: list[Item] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)        # image ids, ok
    unreadable: list[int] = field(default_factory=list)       # image ids, error kept (file unchanged)
    touched: list[tuple[int, int, int]] = field(default_factory=list)   # (id, size, mtime): same bytes, restat
    moved: list[tuple[int, str, int, int, bool]] = field(default_factory=list)  # (from id, path, size, mtime, copy)
    missing: list[int] = field(default_factory=list)
    hash_errors: list[tuple[str, int, int, str]] = field(default_factory=list)  # (path, size, mtime, reason)

    def counts(self) -> dict[str, int]:
        kinds = [i.kind for i in self.to_tag]
        return {"unchanged": len(self.unchanged),
                "new": kinds.count("new"), "changed": kinds.count("changed"),
                "untagged": kinds.count("untagged"), "forced": kinds.count("forced"),
                "moved": len(self.moved), "missing": len(self.missing),
                "unreadable": len(self.unreadable) + len(self.hash_errors)}

    def summary(self) -> str:
        """"12,040 unchanged, 31 new, 2 changed" (only the kinds that occur, unchanged always)."""
        c = self.counts()
        parts = [f"{c['unchanged']:,} unchanged"]
        parts += [f"{c[k]:,} {k}" for k in ("new", "changed", "untagged", "forced", "moved", "missing") if c[k]]
        if self.unreadable:
            parts.append(f"{len(self.unreadable):,} unreadable (unchanged since; `imgai library errors`)")
        return ", ".join(parts)


def list_files(roots: list[Path], files: list[Path]) -> dict[str, os.stat_result]:
    from ..classify.tag import IMAGE_SUFFIXES

    found: dict[str, os.stat_result] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                    p = os.path.join(dirpath, name)
                    try:
                        found[p] = os.stat(p)
                    except OSError:
                        continue
    for f in files:
        found[str(f)] = os.stat(f)
    return found


def make_plan(conn, roots: list[Path], files: list[Path], fingerprint: str, *, force: bool = False,
              workers: int = 4) -> Plan:
    on_disk = list_files(roots, files)
    known: dict[str, tuple] = {}
    query = ("SELECT i.id, i.path, i.size, i.mtime_ns, i.hash, i.status, t.hash FROM images i "
             "LEFT JOIN tagged t ON t.image_id = i.id AND t.fingerprint = ? ")
    for root in roots:
        prefix = str(root).rstrip(os.sep) + os.sep
        for row in conn.execute(query + "WHERE substr(i.path, 1, ?) = ?", (fingerprint, len(prefix), prefix)):
            known[row[1]] = tuple(row)
    for f in files:
        row = conn.execute(query + "WHERE i.path = ?", (fingerprint, str(f))).fetchone()
        if row:
            known[row[1]] = tuple(row)

    plan = Plan(fingerprint, list(on_disk))
    to_hash: list[tuple[str, os.stat_result, tuple | None]] = []
    sizes = None              # the sizes of indexed images (a moved or copied file keeps its size)
    for path, st in on_disk.items():
        row = known.get(path)
        same = row is not None and row[2] == st.st_size and row[3] == st.st_mtime_ns
        if force:
            plan.to_tag.append(Item(path, st.st_size, st.st_mtime_ns, None, "forced"))
        elif row is None:
            if sizes is None:
                sizes = _indexed_sizes(conn)
            if st.st_size in sizes:
                to_hash.append((path, st, row))
            else:
                plan.to_tag.append(Item(path, st.st_size, st.st_mtime_ns, None, "new"))
        elif same and row[5] == OK and row[6] is not None and row[6] == row[4]:
            plan.unchanged.append(row[0])
        elif same and row[5] == ERROR:
            plan.unreadable.append(row[0])
        elif same and row[5] in (OK, MISSING) and row[4]:
            if row[5] == MISSING:                 # back where it was
                plan.touched.append((row[0], st.st_size, st.st_mtime_ns))
            if row[6] == row[4]:
                plan.unchanged.append(row[0])
            else:
                plan.to_tag.append(Item(path, st.st_size, st.st_mtime_ns, row[4], "untagged"))
        else:
            to_hash.append((path, st, row))
    plan.missing = [row[0] for path, row in known.items() if path not in on_disk and row[5] != MISSING]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        hashes = list(pool.map(_hash_or_reason, [p for p, _, _ in to_hash]))
    gone = set(plan.missing)
    for (path, st, row), (digest, reason) in zip(to_hash, hashes):
        if digest is None:
            plan.hash_errors.append((path, st.st_size, st.st_mtime_ns, reason))
            continue
        if row is not None and row[4] == digest and row[5] != ERROR:
            plan.touched.append((row[0], st.st_size, st.st_mtime_ns))     # same bytes, new mtime
            if row[6] == digest:
                plan.unchanged.append(row[0])
            else:
                plan.to_tag.append(Item(path, st.st_size, st.st_mtime_ns, digest, "untagged"))
        elif row is not None:
            plan.to_tag.append(Item(path, st.st_size, st.st_mtime_ns, digest, "changed"))
        else:
            source = _same_content(conn, digest, fingerprint)
            if source is None:
                plan.to_tag.append(Item(path, st.st_size, st.st_mtime_ns, digest, "new"))
            else:
                source_id, source_path = source
                copy = source_id not in gone and os.path.exists(source_path)
                plan.moved.append((source_id, path, st.st_size, st.st_mtime_ns, copy))
                if not copy:
                    gone.discard(source_id)
                    plan.missing = [i for i in plan.missing if i != source_id]
    return plan


def _indexed_sizes(conn) -> set[int]:
    """Sizes of the images whose content the index knows (the only sizes a moved file can have)."""
    return {r[0] for r in conn.execute("SELECT DISTINCT size FROM images WHERE hash IS NOT NULL AND status != ?",
                                       (ERROR,))}


def _same_content(conn, digest: str, fingerprint: str) -> tuple[int, str] | None:
    """An image with these bytes already tagged by this model (the moved file's old row)."""
    row = conn.execute("SELECT i.id, i.path FROM images i JOIN tagged t ON t.image_id = i.id "
                       "AND t.fingerprint = ? AND t.hash = i.hash WHERE i.hash = ? AND i.status != ? "
                       "ORDER BY i.status = 'missing' DESC LIMIT 1", (fingerprint, digest, ERROR)).fetchone()
    return (row[0], row[1]) if row else None


def _hash_or_reason(path: str) -> tuple[str | None, str | None]:
    try:
        return content_hash(path), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
