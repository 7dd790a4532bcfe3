"""Review: each (image, tag) is accepted (score ≥ its threshold), to review (between the review
floor and the threshold) or below; a person's decision (accept, reject, add a tag the model
missed) is stored apart from the scores and always wins. Thresholds are per category for taggers
with categories (general, character) and one pair for plain classifiers; they are persisted in
the index, so the app and the CLI show and use the same ones.

A decision remembers the image's content hash: when the image changes afterwards, the decision
is kept and flagged (`changed`), for a person to look at again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import access
from ..classify.tag import CHARACTER_THRESHOLD, GENERAL_THRESHOLD
from ..errors import ConfigError
from .index import (ACCEPT, ADD, DECISIONS, MISSING, REJECT, LibraryError, from_score, get_setting, now,
                    reading, set_settings, to_score, transaction)

# category → (review floor, accept threshold); None is a plain classifier's classes
CATEGORIES = ("general", "character", "classifier")
DEFAULT_THRESHOLDS = {"general": (0.15, GENERAL_THRESHOLD), "character": (0.5, CHARACTER_THRESHOLD),
                      "classifier": (0.15, 0.5)}

# review states of one (image, tag)
ACCEPTED, TO_REVIEW, BELOW = "accepted", "review", "below"
BY_PERSON = {ACCEPT: "accepted by you", REJECT: "rejected by you", ADD: "added by you"}
KEPT = (ACCEPTED, BY_PERSON[ACCEPT], BY_PERSON[ADD])       # the states that make a tag the image's


def category_key(category: str | None) -> str:
    """The threshold pair a tag's category uses (ratings and other categories use general's)."""
    if category is None:
        return "classifier"
    return "character" if category == "character" else "general"


@dataclass(frozen=True)
class Thresholds:
    values: dict          # category key → (review floor, accept)

    def review_floor(self, category: str | None) -> float:
        return self.values[category_key(category)][0]

    def accept(self, category: str | None) -> float:
        return self.values[category_key(category)][1]

    def state(self, score: float | None, category: str | None) -> str:
        if score is not None and score >= self.accept(category):
            return ACCEPTED
        if score is not None and score >= self.review_floor(category):
            return TO_REVIEW
        return BELOW

    def to_dict(self) -> dict:
        return {k: {"review": r, "accept": a} for k, (r, a) in self.values.items()}


def thresholds(conn=None) -> Thresholds:
    """The persisted thresholds (defaults for what was never set)."""
    def read(c):
        return Thresholds({k: tuple(get_setting(c, f"thresholds.{k}", list(v))) for k, v in DEFAULT_THRESHOLDS.items()})
    if conn is not None:
        return read(conn)
    with reading() as c:
        return read(c)


def set_thresholds(category: str, *, review: float | None = None, accept: float | None = None,
                   actor=None) -> Thresholds:
    """Set (and persist) a category's review floor and/or accept threshold."""
    access.check(actor, "library")
    if category not in CATEGORIES:
        raise ConfigError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    old_review, old_accept = thresholds().values[category]
    review = old_review if review is None else float(review)
    accept = old_accept if accept is None else float(accept)
    if not 0.0 <= review <= accept <= 1.0:
        raise ConfigError(f"{category}: the review floor ({review}) must be ≤ the accept threshold ({accept}), "
                          "both between 0 and 1, e.g. review 0.15, accept 0.4")
    set_settings({f"thresholds.{category}": [review, accept]})
    return thresholds()


@dataclass
class TagState:
    label: str
    category: str | None
    score: float | None          # None: a tag a person added
    state: str
    changed: bool = False        # decided before the image changed

    def to_dict(self) -> dict:
        return asdict(self)


def image_tags(conn, image_ids: list[int], *, model_id: str | None = None, limits: Thresholds | None = None,
               include_below: bool = False, top: int | None = None) -> dict[int, list[TagState]]:
    """Each image's tags with their state, best score per label (over the models that tagged it,
    or only `model_id`'s); a person's decision wins; tags below the review floor left out unless asked."""
    limits = limits or thresholds(conn)
    out: dict[int, dict[str, TagState]] = {i: {} for i in image_ids}
    model_filter, args = ("AND s.tag_id IN (SELECT id FROM tags WHERE fingerprint IN "
                          "(SELECT fingerprint FROM models WHERE model_id=?))", [model_id]) if model_id else ("", [])
    if not include_below:          # below every review floor: never shown, not even read
        model_filter += f" AND s.score >= {to_score(min(r for r, _ in limits.values.values()))}"
    known: dict[int, tuple] = {}   # tag id → (label, category), asked once for the tags met
    for chunk in _chunks(image_ids):
        marks = ",".join("?" * len(chunk))
        scored = f"SELECT s.image_id, s.tag_id, s.score FROM scores s WHERE s.image_id IN ({marks}) {model_filter}"
        if top:          # each image's best `top` scores only
            scored = (f"SELECT image_id, tag_id, score FROM (SELECT *, row_number() OVER "
                      f"(PARTITION BY image_id ORDER BY score DESC) AS rank FROM ({scored})) WHERE rank <= {int(top)}")
        rows = conn.execute(scored, [*chunk, *args]).fetchall()
        rows.sort(key=lambda r: -r[2])
        _tag_names(conn, {r[1] for r in rows}, known)
        for image_id, tag_id, score in rows:
            label, category = known[tag_id]
            if label not in out[image_id]:
                value = from_score(score)
                out[image_id][label] = TagState(label, category, value, limits.state(value, category))
        for image_id, label, action, decided_hash, current in conn.execute(
                f"SELECT d.image_id, d.label, d.action, d.hash, i.hash FROM decisions d JOIN images i ON i.id = d.image_id "
                f"WHERE d.image_id IN ({marks})", chunk):
            tag = out[image_id].get(label) or TagState(label, None, None, BELOW)
            tag.state = BY_PERSON[action]
            tag.changed = bool(decided_hash and current and decided_hash != current)
            out[image_id][label] = tag
    return {i: [t for t in tags.values() if include_below or t.state != BELOW] for i, tags in out.items()}


def _tag_names(conn, tag_ids: set[int], known: dict[int, tuple]) -> None:
    """Fill `known` (tag id → (label, category)) for these ids."""
    missing = [i for i in tag_ids if i not in known]
    for chunk in _chunks(missing):
        known.update((i, (label, category)) for i, label, category in conn.execute(
            f"SELECT id, label, category FROM tags WHERE id IN ({','.join('?' * len(chunk))})", chunk))


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# -- what is pending -------------------------------------------------------------------------

@dataclass
class Pending:
    path: str
    label: str
    category: str | None
    score: float
    model_id: str

    def to_dict(self) -> dict:
        return asdict(self)


def pending(*, label: str | None = None, model_id: str | None = None, limit: int | None = None,
            actor=None) -> list[Pending]:
    """The (image, tag) pairs to review (between floor and threshold, undecided), highest score first."""
    access.check(actor, "library")
    with reading() as conn:
        limits = thresholds(conn)
        where, args = ["i.status != ?"], [MISSING]
        if label:
            where.append("t.label = ?")
            args.append(label)
        if model_id:
            where.append("m.model_id = ?")
            args.append(model_id)
        band = " OR ".join(
            f"(({_category_sql(k)}) AND s.score >= {to_score(r)} AND s.score < {to_score(a)})"
            for k, (r, a) in limits.values.items())
        rows = conn.execute(
            "SELECT i.path, t.label, t.category, s.score, m.model_id FROM scores s "
            "JOIN tags t ON t.id = s.tag_id JOIN images i ON i.id = s.image_id "
            "JOIN models m ON m.fingerprint = t.fingerprint "
            f"WHERE {' AND '.join(where)} AND ({band}) AND t.category IS NOT 'rating' "
            "AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.image_id = s.image_id AND d.label = t.label) "
            "ORDER BY s.score DESC, i.path" + (f" LIMIT {int(limit)}" if limit else ""), args).fetchall()
    seen, out = set(), []
    for path, lab, category, score, model in rows:
        if (path, lab) not in seen:
            seen.add((path, lab))
            out.append(Pending(path, lab, category, from_score(score), model))
    return out


def _category_sql(key: str) -> str:
    return {"classifier": "t.category IS NULL", "character": "t.category = 'character'",
            "general": "t.category IS NOT NULL AND t.category != 'character'"}[key]


def progress(*, actor=None) -> tuple[int, int]:
    """(reviewed, to review in all): decided pairs, and decided + pending ones."""
    decided = _count("SELECT count(*) FROM decisions", actor)
    return decided, decided + len(pending(actor=actor))


def _count(sql: str, actor) -> int:
    access.check(actor, "library")
    with reading() as conn:
        return conn.execute(sql).fetchone()[0]


# -- decisions -------------------------------------------------------------------------------

def decide(decisions: list[dict], *, actor=None) -> int:
    """Store a person's decisions: [{"path", "label", "action": accept|reject|add|clear}]; returns
    how many were stored. An unknown image or action is an error naming it (nothing stored)."""
    access.check(actor, "library")
    rows = []
    with transaction() as conn:
        for d in decisions:
            path, label, action = str(d.get("path", "")), str(d.get("label", "")).strip(), d.get("action")
            if action not in (*DECISIONS, "clear"):
                raise ConfigError(f"decision {action!r} for {path} / {label!r} is not one of "
                                  f"{', '.join(DECISIONS)}, clear")
            if not label:
                raise ConfigError(f"a decision for {path} names no tag; give its label, e.g. 'cat'")
            image = _find_image(conn, path)
            if image is None:
                raise LibraryError(f"{path} is not in the library; tag its folder first (`imgai tag FOLDER`)")
            if action == "clear":
                conn.execute("DELETE FROM decisions WHERE image_id=? AND label=?", (image[0], label))
            else:
                conn.execute("INSERT OR REPLACE INTO decisions(image_id, label, action, hash, at) VALUES (?, ?, ?, ?, ?)",
                             (image[0], label, action, image[1], d.get("at") or now()))
            rows.append(image[0])
    return len(rows)


def _find_image(conn, path: str):
    """The index row of `path` as given, else of its absolute form."""
    for candidate in dict.fromkeys((path, str(Path(path).expanduser().resolve()) if path else path)):
        row = conn.execute("SELECT id, hash FROM images WHERE path = ?", (candidate,)).fetchone()
        if row:
            return row
    return None


def accept_all(label: str, min_score: float, *, actor=None) -> int:
    """Accept every pending `label` scoring ≥ min_score (the app's "accept all ≥ x" for one tag)."""
    items = [p for p in pending(label=label, actor=actor) if p.score >= min_score]
    return decide([{"path": p.path, "label": p.label, "action": ACCEPT} for p in items], actor=actor)


def export_decisions(*, actor=None) -> list[dict]:
    """Every decision with its image's path and content hash (enough to carry it to a fresh index)."""
    access.check(actor, "library")
    with reading() as conn:
        return _decision_rows(conn)


def _decision_rows(conn) -> list[dict]:
    return [dict(path=r[0], hash=r[1], label=r[2], action=r[3], decided_hash=r[4], at=r[5]) for r in conn.execute(
        "SELECT i.path, i.hash, d.label, d.action, d.hash, d.at FROM decisions d JOIN images i ON i.id = d.image_id "
        "ORDER BY i.path, d.label")]


def read_decisions_from(path: Path) -> list[dict]:
    """The decisions a (possibly damaged) index file still yields; [] when none can be read."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return _decision_rows(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def import_decisions(rows: list[dict], *, actor=None) -> int:
    """Take decisions exported before: matched by path, else by content hash; an image the index
    does not know yet gets a placeholder row (found again by the next `imgai tag`)."""
    access.check(actor, "library")
    count = 0
    with transaction() as conn:
        for d in rows:
            if d.get("action") not in DECISIONS:
                raise ConfigError(f"decision {d.get('action')!r} in the file is not one of {', '.join(DECISIONS)}")
            image = conn.execute("SELECT id FROM images WHERE path = ?", (d["path"],)).fetchone()
            if image is None and d.get("hash"):
                image = conn.execute("SELECT id FROM images WHERE hash = ? LIMIT 1", (d["hash"],)).fetchone()
            if image is None:
                image = conn.execute("INSERT INTO images(path, size, mtime_ns, hash, status, seen_at) "
                                     "VALUES (?, -1, -1, ?, ?, ?) RETURNING id",
                                     (d["path"], d.get("hash"), MISSING, now())).fetchone()
            conn.execute("INSERT OR REPLACE INTO decisions(image_id, label, action, hash, at) VALUES (?, ?, ?, ?, ?)",
                         (image[0], d["label"], d["action"], d.get("decided_hash") or d.get("hash"), d.get("at") or now()))
            count += 1
    return count


def errors(*, actor=None) -> list[dict]:
    """Files that could not be read, with their reason (retried when they change)."""
    access.check(actor, "library")
    with reading() as conn:
        return [dict(path=r[0], error=r[1]) for r in
                conn.execute("SELECT path, error FROM images WHERE status='error' ORDER BY path")]
