"""Incremental tagging into the library: plan, tag what changed, write each batch in one transaction
(on the writer's thread, writer.py, so the tagging never waits for SQLite).

A run killed at any moment leaves whole batches (each image's row, its scores and its `tagged`
mark land together), so running the same command again continues where it stopped: the plan finds
the finished images unchanged. Two runs on one folder at once both finish; every write is an
upsert keyed by path or (image, tag), so there is never a duplicate row. Results are written by
the process that reads the stream (the Ray engine's driver included). A folder with no images is
an error before anything is recorded (no run row; images the index had there are marked missing).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .. import access
from ..errors import ConfigError
from ..log import get_logger
from .index import (DONE, ERROR, FAILED, MISSING, OK, RUNNING, SCORE_FLOOR, LibraryError, connect, now,
                    from_score, transaction)
from .plan import Item, Plan, make_plan
from .writer import BatchWriter, upsert_image

WRITE_BATCH = 64          # results per transaction …
WRITE_EVERY_S = 1.0       # … or fewer, at least once a second (a killed run loses at most that)
ALL_SCORES = 1_000_000    # top-k large enough to keep every score above the floor
CLASSIFIER_KEPT = 20      # a plain classifier's classes kept per image (best first), above the floor or not

log = get_logger("library")


# -- model fingerprints ------------------------------------------------------------------------

_FINGERPRINTS: dict[tuple, str] = {}
_FP_LOCK = threading.Lock()


def model_fingerprint(folder: Path) -> str:
    """sha256 of the model's ONNX bytes, labels, tag categories and preprocessing (cached per file state)."""
    from ..classify.tag import _fingerprint

    key = (str(folder), _fingerprint(Path(folder)))
    with _FP_LOCK:
        if key not in _FINGERPRINTS:
            h = hashlib.sha256()
            for p in sorted(Path(folder).iterdir()):
                if p.is_file() and (p.suffix in (".onnx", ".json", ".csv", ".data") or p.name.endswith(".onnx_data")):
                    h.update(p.name.encode() + b"\0")
                    with open(p, "rb") as f:
                        while chunk := f.read(1 << 20):
                            h.update(chunk)
            _FINGERPRINTS[key] = h.hexdigest()[:32]
        return _FINGERPRINTS[key]


# -- the run -----------------------------------------------------------------------------------

@dataclass
class RunReport:
    run_id: int
    model_id: str
    fingerprint: str
    counts: dict = field(default_factory=dict)    # the plan's, plus tagged / failed
    summary: str = ""
    state: str = DONE
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def split_inputs(paths) -> tuple[list[Path], list[Path]]:
    """(folders, files), resolved; a path that does not exist is a ConfigError naming it."""
    roots, files = [], []
    for item in paths:
        p = Path(item).expanduser()
        if "://" in str(item):
            raise ConfigError(f"{item}: the library records local folders; tag URIs without it (--no-library)")
        if p.is_dir():
            roots.append(p.resolve())
        elif p.is_file():
            files.append(p.resolve())
        else:
            raise ConfigError(f"{item} does not exist; give image files or folders")
    return roots, files


def tag_into_library(paths, *, model_id: str | None = None, options=None, engine=None, force: bool = False,
                     on_plan: Callable[[Plan], None] | None = None,
                     on_result: Callable[[object], None] | None = None, actor=None) -> RunReport:
    """Tag folders (and files) into the library, skipping what is unchanged. `on_result` gets each
    freshly tagged TagResult (scores down to the floor); `on_plan` the plan before tagging starts."""
    from ..classify.tag import TagOptions, no_images, tagging_folder
    from ..engines import EngineOptions, tag_stream

    access.check(actor, "library")
    options = options or TagOptions()
    engine = EngineOptions.from_value(engine)
    roots, files = split_inputs(paths)
    folder, model_id = tagging_folder(model_id)
    fingerprint = model_fingerprint(folder)
    from ..classify.labels import TAGS_FILE

    tagger = (folder / TAGS_FILE).is_file()       # categories: every score above the floor counts
    floor = min(SCORE_FLOOR, _lowest_threshold(options)) if tagger else 0.0
    # a plain classifier keeps its best CLASSIFIER_KEPT classes whatever their score (its top-k asks for them)
    top = ALL_SCORES if tagger else max(CLASSIFIER_KEPT, options.top_k or 0)
    force = force or (tagger and floor < SCORE_FLOOR)     # scores under the floor were never kept: tag again

    conn = connect()
    try:
        _fail_abandoned_runs(conn)
        plan = make_plan(conn, roots, files, fingerprint, force=force)
        if not plan.listed:
            _apply_plan(conn, plan, fingerprint)       # what the index had there is marked missing
            raise no_images(paths)
        with transaction(conn):
            run_id = conn.execute("INSERT INTO runs(folder, model_id, fingerprint, state, pid, started_at) "
                                  "VALUES (?, ?, ?, ?, ?, ?)", (json.dumps([str(p) for p in roots + files]),
                                                                 model_id, fingerprint, RUNNING, os.getpid(),
                                                                 now())).lastrowid
            conn.execute("INSERT OR IGNORE INTO models(fingerprint, model_id, at) VALUES (?, ?, ?)",
                         (fingerprint, model_id, now()))
        report = RunReport(run_id, model_id, fingerprint, plan.counts(), plan.summary())
        log.info("library run %s (%s): %s", run_id, model_id, report.summary)
        tagged = failed = 0
        writer = None
        try:
            if on_plan:
                on_plan(plan)
            _apply_plan(conn, plan, fingerprint)
            # every score down to the floor; each file hashed from the bytes read to decode it
            scan = TagOptions(threshold=floor, top_k=top, batch_size=options.batch_size, workers=options.workers,
                              content_hash=True)
            pending: list[tuple[Item, object]] = []
            items = {i.path: i for i in plan.to_tag}
            flushed = time.monotonic()
            if items:
                writer = BatchWriter(fingerprint)
                stream = tag_stream(list(items), model_id=model_id, options=scan, engine=engine)
                try:
                    for result in stream:
                        pending.append((items[str(result.path)], result))
                        if result.error:
                            failed += 1
                            _check_roots(roots, writer, pending)
                        else:
                            tagged += 1
                        if on_result:
                            on_result(result)
                        if len(pending) >= WRITE_BATCH or time.monotonic() - flushed > WRITE_EVERY_S:
                            writer.put(pending)
                            pending, flushed = [], time.monotonic()
                finally:
                    stream.close()
                writer.put(pending)
                writer.close()
        except BaseException as exc:
            if writer is not None:
                try:
                    writer.close()          # what was handed over lands before the run ends Failed
                except BaseException as write_error:    # noqa: BLE001 (the first error is the one raised)
                    log.error("library run %s: %s", run_id, write_error)
            report.counts.update(tagged=tagged, failed=failed)
            _end_run(conn, run_id, FAILED, report.counts, str(exc) or type(exc).__name__)
            raise
        report.counts.update(tagged=tagged, failed=failed + len(plan.hash_errors))
        _end_run(conn, run_id, DONE, report.counts, None)
        return report
    finally:
        conn.close()


def _lowest_threshold(options) -> float:
    values = [v for v in (options.threshold, options.general_threshold, options.character_threshold) if v is not None]
    return min(values) if values else SCORE_FLOOR


def _check_roots(roots: list[Path], writer: BatchWriter, pending) -> None:
    """A listed folder that vanished (an unplugged drive) ends the run Failed, keeping what was done."""
    gone = [r for r in roots if not r.is_dir()]
    if gone:
        writer.put([(item, r) for item, r in pending if not r.error])
        pending.clear()
        raise LibraryError(f"the folder {gone[0]} disappeared during the run (unplugged or unmounted?); what was "
                           "tagged before is kept; run the same command again once it is back")


def _apply_plan(conn, plan: Plan, fingerprint: str) -> None:
    t = now()
    with transaction(conn):
        if plan.missing:
            conn.executemany("UPDATE images SET status=?, seen_at=? WHERE id=?", [(MISSING, t, i) for i in plan.missing])
        conn.executemany("UPDATE images SET size=?, mtime_ns=?, status=?, error=NULL, seen_at=? WHERE id=?",
                         [(s, m, OK, t, i) for i, s, m in plan.touched])
        for source, path, size, mtime, copy in plan.moved:
            if not copy:
                conn.execute("UPDATE images SET path=?, size=?, mtime_ns=?, status=?, error=NULL, seen_at=? WHERE id=?",
                             (path, size, mtime, OK, t, source))
                continue
            new = conn.execute("INSERT INTO images(path, size, mtime_ns, hash, status, seen_at) "
                               "SELECT ?, ?, ?, hash, ?, ? FROM images WHERE id=? ON CONFLICT(path) DO NOTHING "
                               "RETURNING id", (path, size, mtime, OK, t, source)).fetchone()
            if new:
                conn.execute("INSERT OR IGNORE INTO tagged SELECT ?, fingerprint, hash, at FROM tagged WHERE image_id=?",
                             (new[0], source))
                conn.execute("INSERT OR IGNORE INTO scores SELECT ?, tag_id, score FROM scores WHERE image_id=?",
                             (new[0], source))
        for path, size, mtime, reason in plan.hash_errors:
            upsert_image(conn, path, size, mtime, None, ERROR, reason, t)


def _end_run(conn, run_id: int, state: str, counts: dict, error: str | None) -> None:
    with transaction(conn):
        conn.execute("UPDATE runs SET state=?, counts=?, error=?, ended_at=? WHERE id=?",
                     (state, json.dumps(counts), error, now(), run_id))


def _fail_abandoned_runs(conn) -> None:
    """A run still Running whose process is gone was killed: Failed ("interrupted"), never stuck."""
    for row in conn.execute("SELECT id, pid FROM runs WHERE state=?", (RUNNING,)).fetchall():
        if row["pid"] and not _alive(row["pid"]):
            with transaction(conn):
                conn.execute("UPDATE runs SET state=?, error=?, ended_at=? WHERE id=? AND state=?",
                             (FAILED, "interrupted (the process ended before the run did)", now(), row["id"], RUNNING))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tag_and_list(paths, *, model_id: str | None = None, options=None, engine=None, force: bool = False,
                 on_plan: Callable[[Plan], None] | None = None, on_result: Callable[[object], None] | None = None,
                 actor=None) -> tuple[RunReport, list]:
    """Tag into the library and list every file found, cut to `options` as a plain tag run would:
    freshly tagged ones as they finish, then the unchanged ones from the index. `on_result` gets
    each listed result (fresh or stored) as it is known."""
    from ..classify.tag import TagOptions

    options = options or TagOptions()
    listed, fresh, plans = [], set(), []

    def keep(result):
        shown = as_requested(result, options)
        listed.append(shown)
        if on_result:
            on_result(shown)

    def fresh_result(result):
        fresh.add(str(result.path))
        keep(result)

    def planned(plan):
        plans.append(plan)
        if on_plan:
            on_plan(plan)

    report = tag_into_library(paths, model_id=model_id, options=options, engine=engine, force=force,
                              on_plan=planned, on_result=fresh_result, actor=actor)
    for result in stored_results([p for p in plans[0].listed if p not in fresh], report.fingerprint):
        keep(result)
    return report, listed


def as_requested(result, options):
    """A result scored down to the floor, cut to what `options` ask (thresholds per category, top-k,
    excluded tags, underscores), as `Tagger.select` cuts fresh scores."""
    from ..classify.labels import display_name
    from ..classify.tag import CLASSIFIER_TOP_K, Tag, TagResult

    if result.error:
        return TagResult(result.path, [], result.error)
    has_categories = any(t.category is not None for t in result.tags) or result.rating is not None
    limit = options.top_k or (len(result.tags) if has_categories else CLASSIFIER_TOP_K)
    excluded = set(options.exclude_tags) | {display_name(t, underscores_to_spaces=True) for t in options.exclude_tags}
    tags = []
    for tag in sorted(result.tags, key=lambda t: -t.score):
        if tag.score < options.threshold_for(tag.category) or tag.label in excluded \
                or display_name(tag.label, underscores_to_spaces=True) in excluded:
            continue
        tags.append(Tag(display_name(tag.label, underscores_to_spaces=options.underscores_to_spaces), tag.score,
                        tag.category))
        if len(tags) == limit:
            break
    rating = result.rating and Tag(display_name(result.rating.label, underscores_to_spaces=options.underscores_to_spaces),
                                   result.rating.score, result.rating.category)
    return TagResult(result.path, tags, None, rating)


# -- reading results back --------------------------------------------------------------------

def stored_results(paths: list[str], fingerprint: str) -> Iterator:
    """TagResults for images in the index, as the model scored them (down to the floor)."""
    from ..classify.tag import Tag, TagResult

    conn = connect()
    try:
        for path in paths:
            row = conn.execute("SELECT id, status, error FROM images WHERE path=?", (path,)).fetchone()
            if row is None:
                continue
            if row["status"] == ERROR:
                yield TagResult(path, [], row["error"])
                continue
            scores = conn.execute("SELECT t.label, s.score, t.category FROM scores s JOIN tags t ON t.id=s.tag_id "
                                  "WHERE s.image_id=? AND t.fingerprint=? ORDER BY s.score DESC",
                                  (row["id"], fingerprint)).fetchall()
            tags = [Tag(r[0], from_score(r[1]), r[2]) for r in scores]
            rating = next((t for t in tags if t.category == "rating"), None)
            yield TagResult(path, [t for t in tags if t.category != "rating"], None, rating)
    finally:
        conn.close()
