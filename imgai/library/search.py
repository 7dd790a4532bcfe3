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
from .index import ACCEPT, ADD, ERROR, MISSING, REJECT, reading, to_score
from .review import BY_PERSON, TagState, image_tags, thresholds

SEARCH_LIMIT = 100     # images whose tags come back with a search (the count covers every match)
HIT_TAGS = 12          # … each with its best tags, a person's decisions included


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
        # each tag is a range of the scores_by_tag index; the ranges meet in INTERSECT / EXCEPT
        # (measured faster than a lookup per candidate), then the few images not ok are left out
        selects, args = [], []
        for term in include:
            sql, a = term.select()
            selects.append(f"SELECT image_id FROM ({sql})")
            args += a
        compound = " INTERSECT ".join(selects) or "SELECT id AS image_id FROM images"
        for term in exclude:
            sql, a = term.select()
            compound += f" EXCEPT SELECT image_id FROM ({sql})"
            args += a
        # in the index's order (the order images were first tagged): no sort of every match by path
        ids = [r[0] for r in conn.execute(f"SELECT image_id FROM ({compound}) WHERE image_id NOT IN "
                                          "(SELECT id FROM images WHERE status IN (?, ?))", [*args, ERROR, MISSING])]
        shown = ids[:limit]
        paths = dict(conn.execute(f"SELECT id, path FROM images WHERE id IN ({','.join('?' * len(shown))})", shown)) \
            if shown else {}
        tags = image_tags(conn, shown, model_id=model_id, limits=limits, top=HIT_TAGS)
    return SearchResult(text, len(ids), [Hit(paths[i], [t for t in tags[i] if t.state != BY_PERSON[REJECT]])
                                         for i in shown])


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

    def _not_rejected(self, label: str, column: str) -> tuple[str, list]:
        if label not in self.rejected:
            return "", []
        return (f" AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.image_id = {column} AND d.label = ? "
                "AND d.action = ?)", [label, REJECT])

    def select(self) -> tuple[str, list]:
        """SQL selecting the ids (as image_id) of the images that have this term."""
        branches, args = [], []
        for tag_id, label, floor in self.tags:
            extra, a = self._not_rejected(label, "s.image_id")
            branches.append(f"SELECT s.image_id AS image_id FROM scores s WHERE s.tag_id = ? AND s.score >= ?{extra}")
            args += [tag_id, floor, *a]
        if self.kept or not branches:
            branches.append("SELECT image_id AS image_id FROM decisions WHERE action IN (?, ?) "
                            "AND lower(replace(label, '_', ' ')) = ?")
            args += [ACCEPT, ADD, self.text]
        return " UNION ".join(branches), args


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
