"""The one SQLite database: models, jobs and job events. WAL, so readers never block the writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from .config import paths

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    architecture TEXT NOT NULL,
    library TEXT NOT NULL,
    type TEXT NOT NULL,
    conversion TEXT NOT NULL,
    training TEXT,
    enabled INTEGER NOT NULL DEFAULT 0,
    is_default INTEGER NOT NULL DEFAULT 0,
    validation TEXT,
    validated_at REAL,
    error TEXT,
    pytorch_path TEXT,
    onnx_path TEXT,
    job_id TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT '',
    error TEXT,
    result TEXT,
    owner TEXT,
    pid INTEGER,
    pid_started REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at);
CREATE TABLE IF NOT EXISTS job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events(job_id, seq);
"""

BUSY_TIMEOUT_S = 30
_ready: set[str] = set()
_setting_up = threading.Lock()


def connect() -> sqlite3.Connection:
    path = paths().registry
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    if str(path) not in _ready:
        with _setting_up:                 # one thread of this process sets the file up; the others wait
            if str(path) not in _ready:
                use_wal(conn, BUSY_TIMEOUT_S)
                conn.executescript(SCHEMA)
                _migrate(conn)
                _ready.add(str(path))
    return conn


def use_wal(conn: sqlite3.Connection, wait_s: float) -> None:
    """Put `conn`'s database in WAL mode (a no-op once it is). The switch needs the file to itself.
    A reader elsewhere only makes it wait (SQLite's busy wait), but two connections switching at
    once deadlock, and SQLite answers one of them 'database is locked' at once, so try again here,
    up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal":
                return           # (SQLite returns the mode it kept when it could not switch)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError(f"database is locked: other connections held it for {wait_s:g} s "
                                           "while it was being switched to WAL")
        time.sleep(0.01)


# Columns added after a table's first release: (table, column, declaration). Rows that existed
# before keep NULL, which for `owner` means shared.
MIGRATIONS = [("models", "owner", "TEXT")]


def _migrate(conn: sqlite3.Connection) -> None:
    for table, column, declaration in MIGRATIONS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:   # another process added it a moment ago
                if "duplicate column" not in str(exc):
                    raise


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on `conn` (BEGIN IMMEDIATE: one writer at a time): all of it lands, or none of it."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A signal (a job being cancelled) can land anywhere, even inside COMMIT itself.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


@contextmanager
def transaction() -> Iterator[sqlite3.Connection]:
    """One write transaction on the registry: all of it lands, or none of it."""
    conn = connect()
    try:
        with immediate(conn):
            yield conn
    finally:
        conn.close()


def query(sql: str, args: tuple = ()) -> list[sqlite3.Row]:
    conn = connect()
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def now() -> float:
    return time.time()
