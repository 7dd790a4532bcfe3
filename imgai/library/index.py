"""The library index: one SQLite file (WAL) in the data folder, `library.sqlite`.

    images     one row per file: path, size, mtime, content hash, status (ok | error | missing), error
    models     one row per model fingerprint (its ONNX bytes, labels and preprocessing), with its id
    tags       one row per (model fingerprint, label): the label's category (general, character, …)
    tagged     which image was tagged by which fingerprint, at which content hash
    scores     (image, tag) → score, every score above SCORE_FLOOR (not just today's threshold), so a
               new threshold or top-k is a query, not a re-run; stored as millionths (3-byte ints)
    decisions  a person's accept / reject / add per (image, label): apart from the scores, never
               overwritten by a re-tag; the image's hash at decision time flags a later change
    settings   review thresholds (persisted, per category)
    runs       one row per tagging run: folder, model, state, counts, error

Writes happen in one transaction per batch (`transaction()`), so a killed run leaves whole batches
and nothing half-written. A file that is not a readable SQLite database is never reset silently:
`LibraryDamagedError` says how to rebuild (`imgai library rebuild`), which keeps the damaged file
and carries over every decision it can still read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..config import paths
from ..db import immediate, use_wal
from ..errors import ImgaiError

SCORE_FLOOR = 0.02        # scores below this are not kept (100k images × ~50 scores ≈ 150 MB)
SCORE_SCALE = 1_000_000   # scores are stored as whole millionths
MMAP_BYTES = 1 << 30      # the index is read through a memory map up to this size (a search opens a fresh connection)
BUSY_TIMEOUT_S = 60        # a writer waits this long for another (a tagging run commits in batches)

OK, ERROR, MISSING = "ok", "error", "missing"           # image statuses
ACCEPT, REJECT, ADD = "accept", "reject", "add"         # a person's decisions
DECISIONS = (ACCEPT, REJECT, ADD)
RUNNING, DONE, FAILED = "Running", "Done", "Failed"     # run states

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT,
    status TEXT NOT NULL,
    error TEXT,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_hash ON images(hash);
CREATE INDEX IF NOT EXISTS images_status ON images(status);
CREATE TABLE IF NOT EXISTS models (
    fingerprint TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    label TEXT NOT NULL,
    category TEXT,
    UNIQUE (fingerprint, label)
);
CREATE INDEX IF NOT EXISTS tags_label ON tags(label);
CREATE INDEX IF NOT EXISTS tags_text ON tags(lower(replace(label, '_', ' ')));
CREATE TABLE IF NOT EXISTS tagged (
    image_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    hash TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (image_id, fingerprint)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
    image_id INTEGER NOT NULL,
    tag_id INTEGER NOT NULL,
    score INTEGER NOT NULL,
    PRIMARY KEY (image_id, tag_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scores_by_tag ON scores(tag_id, score);
CREATE TABLE IF NOT EXISTS decisions (
    image_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    action TEXT NOT NULL,
    hash TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (image_id, label)
);
CREATE INDEX IF NOT EXISTS decisions_label ON decisions(label, action);
CREATE INDEX IF NOT EXISTS decisions_text ON decisions(lower(replace(label, '_', ' ')), action);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL,
    model_id TEXT,
    fingerprint TEXT,
    state TEXT NOT NULL,
    pid INTEGER,
    counts TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    started_at REAL NOT NULL,
    ended_at REAL
);
"""


# indexes added after the first release: an older index file gets them on its next connect
LATER_INDEXES = ("tags_text", "decisions_text")


class LibraryError(ImgaiError):
    """A library operation that cannot go on (a folder gone, an unknown image or tag)."""


class LibraryDamagedError(LibraryError):
    """library.sqlite is not a readable SQLite database (or lacks its tables)."""


def index_path() -> Path:
    return paths().home / "library.sqlite"


def rebuild_hint(path: Path) -> str:
    return (f"the library index {path} is damaged; nothing was changed. Rebuild it with `imgai library rebuild` "
            "(it moves the damaged file aside, carries over every decision it can still read — or give "
            "`--decisions FILE` from `imgai library decide --export`), then run `imgai tag FOLDER` again")


def connect(path: Path | None = None) -> sqlite3.Connection:
    path = Path(path or index_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        use_wal(conn, BUSY_TIMEOUT_S)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")     # reads straight from the page cache, no read() per page
        names = conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index')").fetchall()
        have = {name for kind, name in names if kind == "table"}
        if not {"images", "scores", "decisions"} <= have:
            if have - {"sqlite_sequence"}:
                raise sqlite3.DatabaseError(f"unexpected tables {sorted(have)}")
            _create(conn)
        elif not set(LATER_INDEXES) <= {name for kind, name in names if kind == "index"}:
            _create(conn)            # an index made before these existed: add them (IF NOT EXISTS)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise LibraryDamagedError(f"{rebuild_hint(path)} ({exc})") from exc
    return conn


def _create(conn: sqlite3.Connection) -> None:
    with immediate(conn):        # the tables appear together (a second process waits, then finds them)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)


@contextmanager
def transaction(conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
    """One write transaction on the index (all of it lands or none of it; one writer at a time),
    on `conn` or on a connection of its own."""
    own = conn is None
    conn = conn or connect()
    try:
        with immediate(conn):
            yield conn
    finally:
        if own:
            conn.close()


@contextmanager
def reading() -> Iterator[sqlite3.Connection]:
    conn = connect()
    try:
        yield conn
    finally:
        conn.close()


def to_score(value: float) -> int:
    return int(round(float(value) * SCORE_SCALE))


def from_score(value: int) -> float:
    return value / SCORE_SCALE


def now() -> float:
    return time.time()


# -- settings ------------------------------------------------------------------------------

def get_setting(conn, key: str, default=None):
    row = conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def set_settings(values: dict) -> None:
    with transaction() as conn:
        conn.executemany("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)",
                         [(k, json.dumps(v)) for k, v in values.items()])
