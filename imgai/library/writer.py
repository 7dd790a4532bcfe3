"""Writing a run's results into the index: one transaction per batch, on a thread of its own.

The tagging thread hands each batch (≤ WRITE_BATCH results, or a second's worth) to a
`BatchWriter` and goes on decoding and inferring; the writer's thread writes it on its own
connection in one transaction (WAL: readers never wait for it, and a second run's writer waits
for this one's transaction, never the other way round halfway). A batch lands whole or not at
all: each image's row, its scores for this model and its `tagged` mark together, so a run killed
at any moment leaves whole batches and the same command continues it.

Each image's content hash comes from the plan when it had to hash the file, else from the
tagging, which hashed the bytes it read for decoding (`TagResult.content_hash`); only a result
without one (an engine that did not hash) makes the writer read the file.
"""

from __future__ import annotations

import os
import queue
import threading

from ..log import get_logger
from .index import ERROR, MISSING, OK, SCORE_SCALE, connect, now, transaction

QUEUED_BATCHES = 4        # batches handed over and not yet written (then the tagging thread waits)

log = get_logger("library")

UPSERT_IMAGE = (
    "INSERT INTO images(path, size, mtime_ns, hash, status, error, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
    "hash=coalesce(excluded.hash, images.hash), status=excluded.status, error=excluded.error, "
    "seen_at=excluded.seen_at")


def upsert_image(conn, path, size, mtime, digest, status, error, t) -> int:
    """One image's row (by path), its id back."""
    return conn.execute(UPSERT_IMAGE + " RETURNING id", (path, size, mtime, digest, status, error, t)).fetchone()[0]


def tag_ids(conn, fingerprint: str, tags, known: dict[str, int]) -> dict[str, int]:
    """Ids of (fingerprint, label) rows for the labels in `tags`, made on first sight; `known`
    (label → id, kept for the run: tag rows are never deleted) saves asking again."""
    for tag in tags:
        if tag.label not in known:
            known[tag.label] = conn.execute(
                "INSERT INTO tags(fingerprint, label, category) VALUES (?, ?, ?) ON CONFLICT(fingerprint, label) "
                "DO UPDATE SET category=excluded.category RETURNING id", (fingerprint, tag.label, tag.category)).fetchone()[0]
    return known


def write_batch(conn, batch: list, fingerprint: str, known: dict[str, int] | None = None,
                owners: dict[int, bool] | None = None) -> None:
    """One transaction: each image's row, its scores for this model and its `tagged` mark.
    `batch` holds (plan Item, TagResult) pairs; `known` (label → tag id of this model) and `owners`
    (tag id → whether it is this model's) may be kept between batches. Only what differs from the
    stored scores is written: a score that changed, one that is new, one no longer above the floor
    (so tagging the same bytes again writes next to nothing)."""
    if not batch:
        return
    known = {} if known is None else known
    owners = {} if owners is None else owners
    t = now()
    rows, failed, scored = [], [], []
    for item, result in batch:
        digest = item.hash or result.content_hash
        if result.error:
            status = MISSING if not os.path.exists(item.path) else ERROR
            rows.append((item.path, item.size, item.mtime_ns, digest, status, None if status == MISSING else result.error, t))
            failed.append(item.path)
        else:
            if digest is None:
                digest = _hash_now(item.path)
            rows.append((item.path, item.size, item.mtime_ns, digest, OK, None, t))
            scored.append((item.path, digest, list(result.tags) + ([result.rating] if result.rating else [])))
    with transaction(conn):
        conn.executemany(UPSERT_IMAGE, rows)
        paths = [r[0] for r in rows]
        ids = dict(conn.execute(f"SELECT path, id FROM images WHERE path IN ({_marks(paths)})", paths))
        if failed:
            conn.execute(f"DELETE FROM tagged WHERE image_id IN ({_marks(failed)})", [ids[p] for p in failed])
        if not scored:
            return
        if not known:
            known.update(conn.execute("SELECT label, id FROM tags WHERE fingerprint=?", (fingerprint,)))
            owners.update((tag_id, True) for tag_id in known.values())
        image_ids = [ids[path] for path, _, _ in scored]
        new: dict[tuple[int, int], int] = {}
        for image_id, (_, _, tags) in zip(image_ids, scored):
            tag_ids(conn, fingerprint, tags, known)
            new.update(((image_id, known[tag.label]), int(round(tag.score * SCORE_SCALE))) for tag in tags)
        stored = {(i, tag_id): score for i, tag_id, score in conn.execute(
            f"SELECT image_id, tag_id, score FROM scores WHERE image_id IN ({_marks(image_ids)})", image_ids)}
        if stored:              # tagged before (by this model or another): write only what differs
            _learn_owners(conn, fingerprint, {tag_id for _, tag_id in stored}, owners)
            stale = [key for key in stored if key not in new and owners[key[1]]]
            if stale:
                conn.executemany("DELETE FROM scores WHERE image_id=? AND tag_id=?", stale)
            rows = [(*key, score) for key, score in new.items() if stored.get(key) != score]
        else:
            rows = [(*key, score) for key, score in new.items()]
        conn.executemany("INSERT OR REPLACE INTO scores(image_id, tag_id, score) VALUES (?, ?, ?)", rows)
        conn.executemany("INSERT OR REPLACE INTO tagged(image_id, fingerprint, hash, at) VALUES (?, ?, ?, ?)",
                         [(image_id, fingerprint, digest or "", t) for image_id, (_, digest, _) in zip(image_ids, scored)])


def _marks(values) -> str:
    return ",".join("?" * len(values))


def _learn_owners(conn, fingerprint: str, tag_ids_seen: set[int], owners: dict[int, bool]) -> None:
    """Which of these tag ids are this model's (asked only for ids not seen before: another model's,
    or this model's made by a run beside this one)."""
    unknown = [tag_id for tag_id in tag_ids_seen if tag_id not in owners]
    for chunk in range(0, len(unknown), 500):
        part = unknown[chunk:chunk + 500]
        owners.update((tag_id, False) for tag_id in part)          # (a score whose tag row is gone: not ours)
        owners.update((tag_id, fp == fingerprint) for tag_id, fp in conn.execute(
            f"SELECT id, fingerprint FROM tags WHERE id IN ({_marks(part)})", part))


def _hash_now(path: str) -> str | None:
    """The content hash of a result that came without one (read here; None when it cannot be read:
    the next run hashes the file again)."""
    from .plan import content_hash

    try:
        return content_hash(path)
    except OSError:
        return None


class BatchWriter:
    """Writes batches handed over by `put` on its own thread and connection, in order; `close`
    waits for every batch handed over to land. A write that fails stops the writer: the error is
    raised by the next `put` or by `close`, and later batches are not written."""

    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint
        self.written = 0                      # results written so far
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUED_BATCHES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="imgai-library-writer", daemon=True)
        self._thread.start()

    def put(self, batch: list) -> None:
        if self._error is not None:
            raise self._error
        if batch:
            self._queue.put(list(batch))

    def close(self) -> None:
        """Wait until everything handed over is written (or the writer failed: then raise its error)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        conn = None
        known: dict[str, int] = {}
        owners: dict[int, bool] = {}
        try:
            while (batch := self._queue.get()) is not None:
                if self._error is not None:
                    continue                   # failed: drain, so that `put` never blocks
                try:
                    conn = conn or connect()
                    write_batch(conn, batch, self.fingerprint, known, owners)
                    self.written += len(batch)
                except BaseException as exc:   # handed to the tagging thread
                    log.error("library: writing a batch of %d result(s) failed: %s", len(batch), exc)
                    self._error = exc
        finally:
            if conn is not None:
                conn.close()
