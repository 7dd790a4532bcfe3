"""Job tables: the Convert tab's conversion and INT8 jobs and the Quantize tab's runs, one row shape."""

from __future__ import annotations

import time

from .. import jobs as job_store
from ..access import Actor
from ..words import plain

JOB_COLUMNS = ["Job", "Model", "State", "Progress", "Stage", "Started", "Error"]
RUN_COLUMNS = ["Job", "Models", "State", "Progress", "Stage", "Started", "Error"]   # a run has one or more keys
# the jobs that act on a registry model (the Convert tab's table; "demo": Restore the demo model)
MODEL_JOB_KINDS = ("convert", "int8", "demo")


def when(ts: float | None) -> str:
    """A time as a table shows it: local, to the minute ('' when there is none)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


def job_row(job: job_store.Job, *, with_kind: bool = False) -> list:
    state = f"{job.kind}: {job.state}" if with_kind else job.state
    return [job.id, job.subject or "", state, f"{job.progress:.0%}", plain(job.stage) or "",
            when(job.started_at or job.created_at), plain(job.error) or ""]


def job_rows(found, *, with_kind: bool = False) -> list[list]:
    return [job_row(j, with_kind=with_kind) for j in found]


def model_jobs(actor: Actor | None, *, limit: int = 20) -> list[job_store.Job]:
    """The latest conversion and INT8 jobs this visitor may see, newest first."""
    found = [j for kind in MODEL_JOB_KINDS for j in job_store.list_jobs(kind=kind, actor=actor, limit=limit)]
    return sorted(found, key=lambda j: j.created_at, reverse=True)[:limit]


def selected_job(found, job_id: str | None) -> str | None:
    """The job a table keeps selected: the one asked for, else the running one, else the latest
    (what a reload restores)."""
    if job_id or not found:
        return job_id or None
    return next((j.id for j in found if j.state in job_store.ACTIVE), found[0].id)
