"""Search the library: `cat -dog "long hair"`.

A term is a tag (spaces and underscores alike, any case); `-term` excludes it; a quoted phrase is
one term. An image has a tag when a person accepted or added it, or when a model scored it at
least `min_score` (default: the tag's accept threshold) and no person rejected it. `model_id`
limits the scores to one model's.

Answered from the index, never a scan of the scores: each term is a range of `scores_by_tag`
(tag id, score ≥ floor), read by SQLite as one string of ids (`group_concat`: no row-by-row fetch
into Python) and met with the others as sorted arrays (numpy). The smallest term goes first; once
the candidates are few (≤ PROBE_MAX), each further term is checked for those images only, by the
primary key, instead of reading the whole term. The hits are the first `limit` ids (the order
images were first tagged); the total counts every match.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .. import access
from ..errors import ConfigError
from .index import ACCEPT, ADD, ERROR, MISSING, OK, REJECT, reading, to_score
from .review import BY_PERSON, TagState, image_tags, thresholds

SEARCH_LIMIT = 100     # images whose tags come back with a search (the count covers every match)
HIT_TAGS = 12          # … each with its best tags, a person's decisions included
PROBE_MAX = 2000       # candidates few enough to check term by term through the primary key
ESTIMATE_CAP = PROBE_MAX + 1   # a term's size is counted up to here to choose the order


@dataclass
class Query:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Query":
        try:
            words = shlex.split(text or "")
        except ValueError as exc:
            raise ConfigError(f"search {text!r}: {exc}; close the quote, e.g. 'cat \"long hair\"'") from exc
        q = cls()
        for w in words:
            if w.startswith("-") and len(w) > 1:
                q.exclude.append(_norm(w[1:]))
            elif w != "-":
                q.include.append(_norm(w))
        if not q.include and not q.exclude:
            raise ConfigError("an empty search; give tags such as 'cat -dog' (a leading - excludes a tag)")
        return q


def _norm(label: str) -> str:
    return label.replace("_", " ").strip().lower()


@dataclass
class Hit:
    path: str
    tags: list[TagState]

    def to_dict(self) -> dict:
        return {"path": self.path, "tags": [t.to_dict() for t in self.tags]}


@dataclass
class SearchResult:
    query: str
    total: int
    hits: list[Hit]

    def to_dict(self) -> dict:
        return {"query": self.query, "total": self.total, "hits": [h.to_dict() for h in self.hits]}


def search(text: str, *, min_score: float | None = None, model_id: str | None = None, limit: int = SEARCH_LIMIT,
           actor=None) -> SearchResult:
    access.check(actor, "library")
    if min_score is not None and not 0.0 <= float(min_score) <= 1.0:
        raise ConfigError(f"min_score is a probability between 0 and 1, got {min_score!r}")
    query = Query.parse(text)
    with reading() as conn:
        limits = thresholds(conn)
        include = [_Term.resolve(conn, t, min_score, model_id, limits) for t in query.include]
        exclude = [_Term.resolve(conn, t, min_score, model_id, limits) for t in query.exclude]
        ids = _matches(conn, include, exclude)
        shown = ids[:limit].tolist()
        paths = dict(conn.execute(f"SELECT id, path FROM images WHERE id IN ({','.join('?' * len(shown))})", shown)) \
            if shown else {}
        tags = image_tags(conn, shown, model_id=model_id, limits=limits, top=HIT_TAGS)
    return SearchResult(text, len(ids), [Hit(paths[i], [t for t in tags[i] if t.state != BY_PERSON[REJECT]])
                                         for i in shown])


def _matches(conn, include: list["_Term"], exclude: list["_Term"]):
    """The sorted ids of the images (ok ones) with every included term and none of the excluded."""
    import numpy as np

    if include:
        include = sorted(include, key=lambda term: term.estimate(conn))
        ids = include[0].ids(conn)
    else:
        ids = _id_array(conn, "SELECT group_concat(id) FROM images WHERE status = ?", [OK])
    for term in include[1:]:
        if not len(ids):
            break
        ids = _meet(ids, term.ids(conn, within=ids), keep=True)
    for term in exclude:
        if not len(ids):
            break
        ids = _meet(ids, term.ids(conn, within=ids), keep=False)
    gone = _id_array(conn, "SELECT group_concat(id) FROM images WHERE status IN (?, ?)", [ERROR, MISSING])
    return _meet(ids, gone, keep=False) if len(gone) and len(ids) else np.asarray(ids, dtype=np.int64)


def _meet(ids, other, *, keep: bool):
    """The sorted `ids` that are (keep) or are not (not keep) in the sorted `other`."""
    import numpy as np

    if not len(other):
        return ids[:0] if keep else ids
    at = np.searchsorted(other, ids)
    found = other[np.minimum(at, len(other) - 1)] == ids
    return ids[found if keep else ~found]


def _id_array(conn, sql: str, args):
    """The ids a `SELECT group_concat(id) …` gives, sorted and unique (one string from SQLite,
    parsed by numpy: far cheaper than a row per id)."""
    import numpy as np

    text = conn.execute(sql, args).fetchone()[0]
    if not text:
        return np.empty(0, dtype=np.int64)
    return _sorted_unique(np.fromstring(text, dtype=np.int64, sep=","))


def _sorted_unique(ids):
    """Sorted, each id once (a sort and a neighbour comparison: numpy's unique() hashes, far slower here)."""
    import numpy as np

    ids.sort()
    if len(ids) > 1:
        ids = ids[np.concatenate(([True], ids[1:] != ids[:-1]))]
    return ids


def _union(parts):
    import numpy as np

    parts = [p for p in parts if len(p)]
    if not parts:
        return np.empty(0, dtype=np.int64)
    return parts[0] if len(parts) == 1 else _sorted_unique(np.concatenate(parts))


@dataclass
class _Term:
    """One search term resolved against the index: its (tag id, floor) pairs and which decisions exist."""
    text: str
    tags: list[tuple[int, str, int]]     # (tag id, label, floor as stored)
    rejected: set[str]                   # labels some image has a reject decision for
    kept: bool                           # some image has it accepted or added by a person

    @classmethod
    def resolve(cls, conn, text: str, min_score, model_id, limits) -> "_Term":
        sql, args = "SELECT id, label, category FROM tags WHERE lower(replace(label, '_', ' ')) = ?", [text]
        if model_id:
            sql += " AND fingerprint IN (SELECT fingerprint FROM models WHERE model_id = ?)"
            args.append(model_id)
        tags = [(tag_id, label, to_score(min_score if min_score is not None else limits.accept(category)))
                for tag_id, label, category in conn.execute(sql, args)]
        actions = {(label, action) for label, action in conn.execute(
            "SELECT DISTINCT label, action FROM decisions WHERE lower(replace(label, '_', ' ')) = ?", (text,))}
        return cls(text, tags, {label for label, action in actions if action == REJECT},
                   any(action in (ACCEPT, ADD) for _, action in actions))

    def estimate(self, conn) -> int:
        """How many images have this term, counted up to ESTIMATE_CAP (enough to order the terms)."""
        total = 0
        for tag_id, _, floor in self.tags:
            total += conn.execute("SELECT count(*) FROM (SELECT 1 FROM scores WHERE tag_id = ? AND score >= ? LIMIT ?)",
                                  (tag_id, floor, ESTIMATE_CAP)).fetchone()[0]
            if total >= ESTIMATE_CAP:
                break
        return total

    def ids(self, conn, within=None):
        """The sorted ids of the images that have this term; with `within` (sorted candidate ids),
        only those of them that have it, looked up one by one when they are few."""
        import json

        probe = within is not None and len(within) <= PROBE_MAX
        candidates = json.dumps(within.tolist()) if probe else None
        parts = []
        for tag_id, label, floor in self.tags:
            if probe:
                scored = _id_array(conn, "SELECT group_concat(s.image_id) FROM json_each(?) AS c CROSS JOIN scores AS s "
                                         "ON s.image_id = c.value AND s.tag_id = ? WHERE s.score >= ?",
                                   [candidates, tag_id, floor])
            else:
                scored = _id_array(conn, "SELECT group_concat(image_id) FROM scores WHERE tag_id = ? AND score >= ?",
                                   [tag_id, floor])
            if label in self.rejected:
                scored = _meet(scored, _id_array(conn, "SELECT group_concat(image_id) FROM decisions WHERE label = ? "
                                                       "AND action = ?", [label, REJECT]), keep=False)
            parts.append(scored)
        if self.kept:
            parts.append(_id_array(conn, "SELECT group_concat(image_id) FROM decisions WHERE action IN (?, ?) "
                                         "AND lower(replace(label, '_', ' ')) = ?", [ACCEPT, ADD, self.text]))
        return _union(parts)


def status(*, actor=None) -> dict:
    """What the library holds: images by status, models, scores, decisions, the last runs."""
    import json

    from .index import index_path

    access.check(actor, "library")
    with reading() as conn:
        by_status = dict(conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())
        models = [dict(r) for r in conn.execute(
            "SELECT m.model_id, m.fingerprint, count(t.image_id) AS images FROM models m "
            "LEFT JOIN tagged t ON t.fingerprint = m.fingerprint GROUP BY m.fingerprint ORDER BY m.at")]
        runs = [dict(r, counts=json.loads(r["counts"])) for r in conn.execute(
            "SELECT id, folder, model_id, state, counts, error, started_at, ended_at FROM runs ORDER BY id DESC LIMIT 5")]
        scores = conn.execute("SELECT count(*) FROM scores").fetchone()[0]
        decisions = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
        limits = thresholds(conn).to_dict()
    path = index_path()
    return {"index": str(path), "bytes": path.stat().st_size if path.exists() else 0, "images": by_status,
            "models": models, "scores": scores, "decisions": decisions, "thresholds": limits, "runs": runs}
