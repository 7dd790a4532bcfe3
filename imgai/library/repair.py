"""Rebuilding a damaged library index: the damaged file is moved aside (never deleted), a fresh
index is made, and every decision that can still be read from the old file (or that a decisions
file exported before holds) is carried over. Scores come back with the next `imgai tag FOLDER`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .. import access
from .index import connect, index_path
from .review import import_decisions, read_decisions_from


def rebuild(*, decisions_file: Path | None = None, actor=None) -> dict:
    """Move a damaged (or any) index aside and start a fresh one, carrying over the decisions that
    can still be read from the old file, or those in `decisions_file` (from `export_decisions`).
    Returns {"moved_to", "decisions"}; scores come back with the next `imgai tag FOLDER`."""
    access.check(actor, "library")
    path = index_path()
    moved, salvaged = None, []
    if path.exists():
        salvaged = read_decisions_from(path)
        moved = path.with_name(f"library.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.sqlite")
        os.replace(path, moved)
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists():
                os.replace(side, Path(str(moved) + suffix))
    conn = connect()
    conn.close()
    carried = 0
    if salvaged:
        carried += import_decisions(salvaged)
    if decisions_file:
        carried += import_decisions(json.loads(Path(decisions_file).read_text()))
    return {"moved_to": str(moved) if moved else None, "decisions": carried}
