"""Fixtures for the photo-library tests: a tiny WD-style tagger (categories, Sigmoid) as the
default model, and folders of small seeded images."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.factories import random_image
from tests.onnx_factories import make_wd_tagger

SIZE = 16


@pytest.fixture
def wd_default(imgai_home, tmp_path):
    """A WD-style tagger, enabled and default; returns its registry id."""
    from imgai import registry
    from imgai.sources import add_model

    model = add_model(str(make_wd_tagger(tmp_path / "wd-tagger", size=SIZE)))
    registry.set_enabled(model.id, True)
    registry.set_default(model.id)
    return model.id


def photo_folder(folder: Path, n: int, *, start: int = 0, size=(24, 24)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [random_image(folder / f"img{i:04d}.jpg", seed=i, size=size) for i in range(start, start + n)]


def index_counts(home: Path) -> dict:
    """Rows in the library index, read with plain sqlite3 (and the duplicate checks)."""
    conn = sqlite3.connect(home / "library.sqlite")
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]   # noqa: E731
        return {"images": one("SELECT count(*) FROM images"),
                "paths": one("SELECT count(DISTINCT path) FROM images"),
                "ok": one("SELECT count(*) FROM images WHERE status='ok'"),
                "tagged": one("SELECT count(*) FROM tagged"),
                "scores": one("SELECT count(*) FROM scores"),
                "scored_images": one("SELECT count(DISTINCT image_id) FROM scores"),
                "decisions": one("SELECT count(*) FROM decisions")}
    finally:
        conn.close()
