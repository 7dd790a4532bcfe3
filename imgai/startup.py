"""What runs once when the app or CLI starts: recover from crashes, offer the demo model."""

from __future__ import annotations

import shutil
import time

from . import jobs, registry
from .config import job_niceness, paths
from .log import get_logger


def recover_models() -> list[str]:
    """A model left Converting whose job is no longer alive becomes Failed ("interrupted")."""
    fixed = []
    for model in registry.list_models():
        if model.conversion != registry.CONVERTING:
            continue
        job = None
        if model.job_id:
            try:
                job = jobs.get(model.job_id)
            except jobs.JobError:
                job = None
        if job is None or job.done:
            registry.fail_conversion(model.id, "interrupted")
            fixed.append(model.id)
    return fixed


def clean_tmp(max_age_s: float = 24 * 3600) -> None:
    """Remove staging folders no live job can be using (older than a day, or any when idle)."""
    busy = bool(jobs.list_jobs(states=(jobs.STARTING, jobs.RUNNING), limit=1))
    for entry in paths().tmp.iterdir():
        if not busy or time.time() - entry.stat().st_mtime > max_age_s:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def prepare(*, demo: bool = True) -> None:
    job_niceness()   # a bad IMGAI_JOB_NICE stops the app here, not every job's worker later
    log = get_logger("imgai.startup")
    stale = jobs.recover()
    fixed = recover_models()
    if stale or fixed:
        log.info("recovered interrupted jobs %s and models %s", stale, fixed)
    clean_tmp()
    from .files import clean_expired

    clean_expired()
    if demo:
        from .demo import ensure_demo

        ensure_demo()
    jobs.dispatch()
