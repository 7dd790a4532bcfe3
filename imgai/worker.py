"""`python -m imgai.worker JOB_ID`: runs one job (started by imgai.jobs.dispatch), at a lower CPU
priority than the app that started it (imgai.config.job_niceness), so long work never starves
the people using the app. The queue and store are imgai/jobs.py; the table of what each kind
runs is imgai/job_kinds.py; what the running job sees is imgai/job_context.py."""

from __future__ import annotations

import signal
import sys
import time

from . import db, words
from .config import job_niceness
from .job_context import JobCancelled, JobContext, cancel_requested
from .jobs import CANCELLED, FAILED, RUNNING, STARTING, SUCCEEDED, dispatch, finish, get, kinds, process_start, \
    run_abort, record_event, resolve
from .log import get_logger
from .priority import lower_priority


def run_in_worker(job_id: str) -> int:
    """Body of `python -m imgai.worker JOB_ID`."""
    import traceback

    import psutil

    log = get_logger("imgai.worker")
    terms = []        # the cancel's SIGTERMs: a job that then ends with any error ends cancelled

    def on_term(signum, frame):
        terms.append(signum)
        if not cancel_requested():      # else the job raises it at its next check (job_context.checked_cancel)
            raise JobCancelled()

    # A cancel can come at any moment: hold SIGTERM until we are inside the try below.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGTERM, on_term)
    with db.transaction() as conn:
        row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row["state"] != STARTING:
            log.warning("job %s is %s, not starting; worker exits", job_id, row and row["state"])
            return 0
        me = psutil.Process()
        conn.execute("UPDATE jobs SET state = ?, pid = ?, pid_started = ?, started_at = ? WHERE id = ?",
                     (RUNNING, me.pid, process_start(me), db.now(), job_id))
        record_event(conn, job_id, "info", f"started (pid {me.pid})")
    job = get(job_id)
    t0 = time.time()
    log.info("job %s started: %s %s", job_id, job.kind, job.subject or "")
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        result = resolve(kinds()[job.kind].run)(JobContext(job))
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except (JobCancelled, Exception) as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if isinstance(exc, JobCancelled) or terms:
            # JobCancelled raised where the signal landed can reach us as another error: code that
            # wraps what it catches (on Python 3.11, a class body's __set_name__ during an import
            # turns it into "RuntimeError: Error calling __set_name__"). The cancel came: it is one.
            if not isinstance(exc, JobCancelled):
                log.info("job %s was cancelled and stopped with %s: %s", job_id, type(exc).__name__, exc)
            if finish(job_id, CANCELLED, error="cancelled by user"):
                run_abort(job, "cancelled")
            code = 0
        else:
            log.error("job %s failed after %.1fs:\n%s", job_id, time.time() - t0, traceback.format_exc())
            message = str(exc) or type(exc).__name__
            if finish(job_id, FAILED, error=message):
                run_abort(job, message)
            code = 1
    else:
        finish(job_id, SUCCEEDED, result=result)
        log.info("job %s succeeded in %.1fs", job_id, time.time() - t0)
        code = 0
    dispatch()
    return code


def main(job_id: str, *, base_nice: int | None = None) -> int:
    """A worker's life; `base_nice` is the nice of the process that submitted the job when a warm
    process (imgai/warm.py) forked this one, else this process's own."""
    lower_priority(job_niceness(), base=base_nice)
    words.use(words.RAW)   # stored messages keep their markers; the app or CLI renders them when read
    return run_in_worker(job_id)


if __name__ == "__main__":
    # through the imported module, so JobCancelled is one class however the job's code imports it
    from imgai.worker import main as _main

    sys.exit(_main(sys.argv[1]))
