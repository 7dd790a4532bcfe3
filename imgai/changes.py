"""One fingerprint of everything a page lists: the model registry, the job table (states and
progress), the data pipelines and the converted diffusion outputs. The app polls it once per page
and every tab refreshes its lists when it moves, so a change made in one tab (or by a job, or by
the CLI) reaches all of them at once."""

from __future__ import annotations

import hashlib

from . import db
from .config import paths


def revision() -> str:
    """A short string that changes whenever something a tab lists changes (cheap: two queries, two
    folder listings)."""
    models = db.query("SELECT COUNT(*), MAX(updated_at) FROM models")[0]
    jobs = db.query("SELECT COUNT(*), TOTAL(progress), MAX(started_at), MAX(ended_at), "
                    "GROUP_CONCAT(DISTINCT state) FROM jobs")[0]
    found = [tuple(models), tuple(jobs)]
    for folder in (paths().home / "train" / "pipelines", paths().converted):
        if folder.is_dir():
            found.append(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()))
    return hashlib.blake2s(repr(found).encode(), digest_size=8).hexdigest()
