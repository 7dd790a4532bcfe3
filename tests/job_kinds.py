"""Job kinds that exist only for the tests of the job system, registered by conftest through
`imgai.jobs.register_kind`: the same path any kind outside imgai's own table takes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from imgai.errors import JobError


def selftest_job(ctx) -> dict:
    """Sleeps in `steps` steps of `delay` seconds, reporting each; fails with `fail` when given."""
    steps = int(ctx.params.get("steps", 3))
    for i in range(steps):
        ctx.progress(i / steps, f"step {i + 1}/{steps}")
        time.sleep(float(ctx.params.get("delay", 0.1)))
    if ctx.params.get("fail"):
        raise JobError(str(ctx.params["fail"]))
    return {"steps": steps}


def probe_job(ctx) -> dict:
    """What the worker found when the job began: whether torch was already imported (a warm worker's
    is; a fresh worker's is not: imgai imports torch only inside the functions that need it), its
    parent, environment, folder and priority; then sleeps `seconds` (a job to cancel)."""
    import os
    import sys

    seen = {"torch_preloaded": "torch" in sys.modules, "pid": os.getpid(), "ppid": os.getppid(),
            "probe": os.environ.get("IMGAI_TEST_PROBE"), "cwd": os.getcwd(), "nice": os.nice(0)}
    ctx.progress(0.5, "probed")
    time.sleep(float(ctx.params.get("seconds", 0)))
    return seen


def self_cancel_job(ctx) -> dict:
    """Cancels itself mid-step (the SIGTERM `jobs.cancel` sends, to its own worker) and writes to
    `out` how far the step got. With `checked`, inside job_context.checked_cancel: the step runs
    to its end and the job stops at its next check; without, it stops where the signal lands."""
    from imgai.job_context import checked_cancel

    out = Path(ctx.params["out"])

    def step() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        sum(i * i for i in range(10_000))          # bytecodes for the signal to land between
        out.write_text("the step ended")
        ctx.check()
        out.write_text("went past the check")

    if ctx.params.get("checked"):
        with checked_cancel():
            step()
    else:
        step()
    return {}


def stubborn_job(ctx) -> dict:
    """Inside job_context.checked_cancel, and then never checks: a cancel has to kill it."""
    from imgai.job_context import checked_cancel

    with checked_cancel():
        ctx.progress(0.5, "sleeping without a check")
        time.sleep(float(ctx.params.get("seconds", 60)))
    return {}


def wrapped_cancel_job(ctx) -> dict:
    """Cancels itself (the SIGTERM `jobs.cancel` sends) inside code that turns what it catches into
    another error, as Python 3.11 does with an exception raised in a class body's __set_name__ while
    a module is imported: a worker's cancel landed there once, during `import imgai.job_kinds`."""
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)                               # the handler raises JobCancelled in here
    except BaseException as exc:
        raise RuntimeError(f"library code wrapped {type(exc).__name__}") from exc
    return {}
