"""Search the library: `cat -dog "long hair"`.

A term is a tag (spaces and underscores alike, any case); `-term` excludes it; a quoted phrase is
one term. An image has a tag when a person accepted or added it, or when a model scored it at
least `min_score` (default: the tag's accept threshold) and no person rejected it. `model_id`
limits the scores to one model's. Answered from the index (tags → scores_by_tag), never a scan
of the scores.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .. import access
from ..errors import ConfigError
from .index import ACCEPT, ADD, OK, REJECT, reading, to_score
from .review import BY_PERSON, TagState, image_tags, thresholds

SEARCH_LIMIT = 100     # images whose tags come back with a search (the count covers every match)


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
        args: list = []
        selects = []
        for term in query.include:
            sql, a = _term_sql(conn, term, min_score, model_id, limits)
            selects.append(f"SELECT image_id FROM ({sql})")
            args += a
        if not selects:                          # only exclusions: every image, less those
            selects.append("SELECT id AS image_id FROM images")
        compound = " INTERSECT ".join(selects)
        for term in query.exclude:
            sql, a = _term_sql(conn, term, min_score, model_id, limits)
            compound += f" EXCEPT SELECT image_id FROM ({sql})"
            args += a
        # in the index's order (the order images were first tagged): no sort of every match by path
        ids = [r[0] for r in conn.execute(f"SELECT c.image_id FROM ({compound}) c JOIN images i ON i.id = c.image_id "
                                          "WHERE i.status = ?", [*args, OK])]
        shown = ids[:limit]
        paths = dict(conn.execute(f"SELECT id, path FROM images WHERE id IN ({','.join('?' * len(shown))})", shown)) \
            if shown else {}
        tags = image_tags(conn, shown, model_id=model_id, limits=limits)
    return SearchResult(text, len(ids), [Hit(paths[i], [t for t in tags[i] if t.state != BY_PERSON[REJECT]])
                                         for i in shown])


def _term_sql(conn, term: str, min_score, model_id, limits) -> tuple[str, list]:
    """SQL selecting the ids of images that have `term`, and its arguments."""
    sql = "SELECT id, label, category FROM tags WHERE lower(replace(label, '_', ' ')) = ?"
    args: list = [term]
    if model_id:
        sql += " AND fingerprint IN (SELECT fingerprint FROM models WHERE model_id = ?)"
        args.append(model_id)
    tags = conn.execute(sql, args).fetchall()
    branches, out = [], []
    for tag_id, label, category in tags:
        floor = min_score if min_score is not None else limits.accept(category)
        branches.append("SELECT s.image_id AS image_id FROM scores s WHERE s.tag_id = ? AND s.score >= ? AND NOT EXISTS "
                        "(SELECT 1 FROM decisions d WHERE d.image_id = s.image_id AND d.label = ? AND d.action = ?)")
        out += [tag_id, to_score(floor), label, REJECT]
    branches.append("SELECT image_id AS image_id FROM decisions WHERE lower(replace(label, '_', ' ')) = ? AND action IN (?, ?)")
    out += [term, ACCEPT, ADD]
    return " UNION ".join(branches), out


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
