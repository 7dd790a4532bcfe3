"""Search over the library index (imgai/library/search.py): the answer of every query shape — tags
met as whole lists or checked candidate by candidate, two models sharing a label, a person's
accept / add / reject, images that are unreadable or missing, --min-score, --model — is the
documented rule worked out by hand over every row; and `imgai library search -cat` needs no `--`."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from imgai.library.index import ACCEPT, ADD, ERROR, MISSING, OK, REJECT, connect, to_score, transaction

LABELS = ["cat", "dog", "long_hair", "Blue_Eyes"]
MODELS = {"fp-a": "model-a", "fp-b": "model-b"}


@pytest.fixture
def library(imgai_home):
    """60 images, two models (fp-b knows only two labels), random scores, decisions and statuses."""
    rng = random.Random(7)
    tags, scores, decisions, statuses = {}, {}, {}, {}
    with transaction(connect()) as conn:
        for fingerprint, model_id in MODELS.items():
            conn.execute("INSERT INTO models VALUES (?, ?, 0)", (fingerprint, model_id))
            for label in LABELS if fingerprint == "fp-a" else LABELS[:2]:
                category = "character" if label == "Blue_Eyes" else "general"
                tags[conn.execute("INSERT INTO tags(fingerprint, label, category) VALUES (?, ?, ?) RETURNING id",
                                  (fingerprint, label, category)).fetchone()[0]] = (fingerprint, label, category)
        for i in range(1, 61):
            statuses[i] = rng.choice([OK] * 8 + [ERROR, MISSING])
            conn.execute("INSERT INTO images VALUES (?, ?, 1, 1, 'h', ?, NULL, 0)", (i, f"/p/{i:03d}.jpg", statuses[i]))
            for tag_id in tags:
                if rng.random() < 0.7:
                    scores[(i, tag_id)] = rng.choice([0.1, 0.3, 0.4, 0.6, 0.9])
                    conn.execute("INSERT INTO scores VALUES (?, ?, ?)", (i, tag_id, to_score(scores[(i, tag_id)])))
            for label in LABELS + ["added tag"]:
                if rng.random() < 0.15:
                    decisions[(i, label)] = rng.choice([ACCEPT, ADD, REJECT])
                    conn.execute("INSERT INTO decisions VALUES (?, ?, ?, 'h', 0)", (i, label, decisions[(i, label)]))
    return tags, scores, decisions, statuses


def expected(library, text: str, *, min_score=None, model_id=None) -> list[int]:
    """The rule, row by row: a person's accept/add, or a model's score ≥ the floor (accept
    threshold by default: general 0.35, character 0.85) with no reject of that label."""
    tags, scores, decisions, statuses = library
    norm = lambda label: label.replace("_", " ").strip().lower()     # noqa: E731

    def has(i, term):
        if any(norm(label) == term and action in (ACCEPT, ADD) for (j, label), action in decisions.items() if j == i):
            return True
        for tag_id, (fingerprint, label, category) in tags.items():
            floor = min_score if min_score is not None else (0.85 if category == "character" else 0.35)
            if norm(label) == term and (model_id is None or MODELS[fingerprint] == model_id) \
                    and scores.get((i, tag_id), -1) >= floor and decisions.get((i, label)) != REJECT:
                return True
        return False

    words = text.split()
    include = [norm(w) for w in words if not w.startswith("-")]
    exclude = [norm(w[1:]) for w in words if w.startswith("-")]
    return [i for i in sorted(statuses) if statuses[i] == OK
            and all(has(i, t) for t in include) and not any(has(i, t) for t in exclude)]


QUERIES = [" ".join(q) for n in (1, 2, 3) for q in itertools.permutations(
    ["cat", "-dog", "long_hair", "-blue_eyes", "added_tag"], n)] + ["-cat -dog", "-long_hair"]


@pytest.mark.parametrize("probe_max", [0, 5, 10_000])   # never / sometimes / always candidate by candidate
def test_every_query_shape_gives_the_rule(library, monkeypatch, probe_max):
    from imgai.library import search as search_module

    monkeypatch.setattr(search_module, "PROBE_MAX", probe_max)
    for text in QUERIES:
        for kwargs in ({}, {"min_score": 0.5}, {"model_id": "model-b"}):
            want = expected(library, text, **kwargs)
            got = search_module.search(text, limit=7, **kwargs)
            assert got.total == len(want), (text, kwargs)
            assert [h.path for h in got.hits] == [f"/p/{i:03d}.jpg" for i in want[:7]], (text, kwargs)


def test_a_query_that_starts_with_an_exclusion_needs_no_double_dash(library, cli):
    want = [f"/p/{i:03d}.jpg" for i in expected(library, "-cat long_hair")]
    for args in (["-cat", "long_hair", "--json", "--limit", "500"], ["-cat long_hair", "--json", "--limit=500"],
                 ["long_hair", "--json", "-cat", "--limit", "500"], ["--json", "--limit", "500", "--", "-cat long_hair"]):
        code, out, err = cli("library", "search", *args)
        assert code == 0, (args, err)
        assert [h["path"] for h in json.loads(out)["hits"]] == want, args
    code, _, err = cli("library", "search", "cat", "--limt", "5")          # a misspelled option is still one
    assert code == 2 and "did you mean --limit?" in err
    code, out, _ = cli("library", "search", "-h")
    assert code == 0 and "usage: imgai library search" in out


def test_an_older_index_gets_the_label_indexes_searches_use(imgai_home):
    import sqlite3

    from imgai.library.index import LATER_INDEXES, index_path

    connect().close()
    old = sqlite3.connect(index_path())
    for name in LATER_INDEXES:
        old.execute(f"DROP INDEX {name}")
    old.commit()
    old.close()
    conn = connect()
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT id FROM tags "
                                                "WHERE lower(replace(label, '_', ' ')) = 'cat'"))
    assert "USING INDEX tags_text" in plan or "USING COVERING INDEX tags_text" in plan
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")} >= set(LATER_INDEXES)
