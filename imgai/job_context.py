"""What a running job sees: its `JobContext` (params, progress, events) and `JobCancelled`, the
exception a cancel raises inside it. The job kinds' functions take the context; the worker
(imgai/worker.py) makes it.

Where a cancel lands. A cancel is a SIGTERM to the worker (imgai.jobs.cancel). By default its
handler raises `JobCancelled` wherever the job's code stands, so long work with no check of its
own (an ONNX export, a calibration) stops at once. But an exception raised between two arbitrary
bytecodes can break library code that is not written for it (inside `Thread.start()`, between
a lock's acquire and its `try:`), and the job then fails with that library's error instead of
being cancelled. Code that checks often runs inside `checked_cancel()`: there a cancel only
marks the request, and `JobContext.check()` (called by `progress` and `event` too) raises it at
a point the job chose. Work that misses its checks for long is stopped by the canceller's
SIGKILL after its grace, and the canceller records the job as cancelled."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from . import db
from .jobs import STAGE_PROGRESS, Job, record_event
from .log import get_logger


class JobCancelled(BaseException):
    """Raised inside a job when it is cancelled, so `finally:` blocks clean up."""


class _CancelState:
    requested = False      # a SIGTERM came
    checked = 0            # > 0: inside checked_cancel(), the job raises it at its own checks


_cancel = _CancelState()


def cancel_requested() -> bool:
    """From the worker's SIGTERM handler. Inside `checked_cancel()`: note the request (the job
    raises it at its next check) and return True; else False, and the handler raises now."""
    if _cancel.checked > 0:
        _cancel.requested = True
        return True
    return False


def check_cancelled() -> None:
    """Raise `JobCancelled` when a cancel has come. A no-op outside a worker, and in any thread
    but the main one (a helper thread's exception would not stop the job)."""
    if _cancel.requested and threading.current_thread() is threading.main_thread():
        _cancel.requested = False          # raised once: clean-up code may report what it does
        raise JobCancelled()


@contextmanager
def checked_cancel() -> Iterator[None]:
    """Inside, a cancel is raised only by `check_cancelled()` (JobContext.check, progress, event)."""
    check_cancelled()
    _cancel.checked += 1
    try:
        yield
    finally:
        _cancel.checked -= 1
    check_cancelled()


class JobContext:
    """Handed to a job function: its params, and how it reports progress and events."""

    def __init__(self, job: Job):
        self.job = job
        self.id = job.id
        self.params = job.params
        self.log = get_logger(f"imgai.job.{job.kind}")

    def check(self) -> None:
        """Stop here (JobCancelled) when the job has been cancelled; see `checked_cancel`."""
        check_cancelled()

    def progress(self, fraction: float, stage: str | None = None) -> None:
        check_cancelled()
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
        check_cancelled()
        with db.transaction() as conn:
            record_event(conn, self.id, level, message, data)
        self.log.log(20 if level == "info" else 30, "job %s: %s", self.id, message)
