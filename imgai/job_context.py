"""What a running job sees: its `JobContext` (params, progress, events) and `JobCancelled`, the
exception a cancel raises inside it. The job kinds' functions take the context; the worker
(imgai/worker.py) makes it."""

from __future__ import annotations

from . import db
from .jobs import STAGE_PROGRESS, Job, record_event
from .log import get_logger


class JobCancelled(BaseException):
    """Raised inside a job when it is cancelled, so `finally:` blocks clean up."""


class JobContext:
    """Handed to a job function: its params, and how it reports progress and events."""

    def __init__(self, job: Job):
        self.job = job
        self.id = job.id
        self.params = job.params
        self.log = get_logger(f"imgai.job.{job.kind}")

    def progress(self, fraction: float, stage: str | None = None) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        with db.transaction() as conn:
            if stage is None:
                conn.execute("UPDATE jobs SET progress = ? WHERE id = ?", (fraction, self.id))
            else:
                conn.execute("UPDATE jobs SET progress = ?, stage = ? WHERE id = ?", (fraction, stage, self.id))
                record_event(conn, self.id, "info", stage, {STAGE_PROGRESS: fraction})
        if stage is not None:
            self.log.info("job %s [%s] %.0f%% %s", self.id, self.job.subject or "-", fraction * 100, stage)

    def event(self, message: str, *, level: str = "info", data: dict | None = None) -> None:
        with db.transaction() as conn:
            record_event(conn, self.id, level, message, data)
        self.log.log(20 if level == "info" else 30, "job %s: %s", self.id, message)
