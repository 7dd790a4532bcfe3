"""The job system: worker subprocesses, queue order, progress, cancel and crash recovery."""

import os
import sys
import time
from pathlib import Path

import pytest

from imgai import jobs
from imgai.errors import StateError
from tests.conftest import stop_job_workers
from tests.waiting import wait_until


def _wait_state(job_id, states, timeout=60):
    return wait_until(lambda: (job := jobs.get(job_id)).state in states and job, timeout,
                      f"job {job_id} to be {' or '.join(states)}")


def test_job_runs_in_a_worker_and_reports_progress(imgai_home):
    job = jobs.submit("selftest", {"steps": 3, "delay": 0.05})
    seen = []
    done = jobs.wait(job.id, timeout=60, on_progress=lambda j: seen.append(j.stage))
    assert done.state == "succeeded" and done.result == {"steps": 3} and done.progress == 1.0
    messages = [e["message"] for e in jobs.events(job.id)]
    assert messages[0].startswith("queued") and "step 3/3" in messages and messages[-1] == "succeeded"
    assert done.pid and done.pid != os.getpid()
    assert "step 2/3" in (imgai_home / "logs" / "imgai.log").read_text()


def test_failed_job_keeps_its_error(imgai_home):
    job = jobs.submit("selftest", {"steps": 1, "delay": 0, "fail": "disk full"})
    done = jobs.wait(job.id, timeout=60)
    assert done.state == "failed" and done.error == "disk full"


def test_queue_runs_jobs_in_order_one_at_a_time(imgai_home):
    ids = [jobs.submit("selftest", {"steps": 1, "delay": 0.2}).id for _ in range(3)]
    assert [jobs.get(i).state for i in ids[1:]] == ["queued", "queued"]
    for i in ids:
        jobs.wait(i, timeout=90)
    finished = [jobs.get(i) for i in ids]
    assert all(j.state == "succeeded" for j in finished)
    assert finished[0].ended_at <= finished[1].started_at and finished[1].ended_at <= finished[2].started_at


def test_cancel_queued_and_running(imgai_home):
    running = jobs.submit("selftest", {"steps": 200, "delay": 0.05})
    queued = jobs.submit("selftest", {"steps": 1})
    _wait_state(running.id, ("running",))
    assert jobs.cancel(queued.id).state == "cancelled"
    cancelled = jobs.cancel(running.id)
    assert cancelled.state == "cancelled" and cancelled.error == "cancelled by user"
    with pytest.raises(StateError, match="already cancelled"):
        jobs.cancel(running.id)


@pytest.mark.parametrize("checked", [False, True])
def test_a_cancel_lands_where_the_job_lets_it(imgai_home, tmp_path, checked):
    """By default a cancel stops the job where it stands; inside checked_cancel (training) only at
    the job's own checks, never between two bytecodes of library code (imgai/job_context.py)."""
    out = tmp_path / "how-far.txt"
    job = jobs.wait(jobs.submit("self-cancel", {"out": str(out), "checked": checked}).id, timeout=60)
    assert (job.state, job.error) == ("cancelled", "cancelled by user")
    assert (out.read_text() if out.exists() else None) == ("the step ended" if checked else None)


def test_a_cancel_that_library_code_turns_into_another_error_still_ends_cancelled(imgai_home):
    """A full run's warm job, cancelled during its import of imgai.job_kinds, ended "failed" with
    "Error calling __set_name__ …": Python 3.11 wraps what a class body's __set_name__ raises. A
    job that ends with any error after the cancel's SIGTERM ends cancelled."""
    job = jobs.wait(jobs.submit("wrapped-cancel", {}).id, timeout=60)
    assert (job.state, job.error) == ("cancelled", "cancelled by user")
    log = (imgai_home / "logs" / "imgai.log").read_text()
    assert "was cancelled and stopped with RuntimeError: library code wrapped JobCancelled" in log


def test_a_job_that_does_not_stop_is_killed_after_its_grace_and_recorded_cancelled(imgai_home, monkeypatch):
    monkeypatch.setattr(jobs, "CANCEL_GRACE_S", 1.0)
    job = jobs.submit("stubborn", {"seconds": 60})
    running = wait_until(lambda: (j := jobs.get(job.id)).stage == "sleeping without a check" and j, 60,
                         "the job to sleep inside checked_cancel")
    started = time.monotonic()
    done = jobs.cancel(job.id)
    assert (done.state, done.error) == ("cancelled", "cancelled by user") and time.monotonic() - started < 10
    wait_until(lambda: not jobs._alive(running.pid, running.pid_started), 10, "the worker to be killed")
    assert jobs.get(job.id).state == "cancelled"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the start after boot is read from /proc")
def test_a_step_of_the_wall_clock_leaves_a_running_job_alive(imgai_home, monkeypatch):
    """A worker is known by its pid and its start. psutil's create_time moves with the wall clock
    (its boot time is the clock's now minus the uptime), so an NTP step made running jobs look dead."""
    import psutil

    job = jobs.submit("selftest", {"steps": 200, "delay": 0.05})
    running = _wait_state(job.id, ("running",))
    booted = psutil.boot_time()
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: booted + 30)     # the clock stepped 30 s
    assert psutil.Process(running.pid).create_time() > time.time() + 20    # psutil dates the worker 30 s later
    assert jobs.get(job.id).state == "running"            # every read reconciles (recover) and keeps it
    assert jobs.cancel(job.id).state == "cancelled"


def test_killed_worker_becomes_failed_interrupted(imgai_home):
    job = jobs.submit("selftest", {"steps": 200, "delay": 0.05})
    running = _wait_state(job.id, ("running",))
    # as every app fixture's teardown does: the workers of its data folder go (they outlive the app)
    assert stop_job_workers(imgai_home) == [running.pid]
    wait_until(lambda: not jobs._alive(running.pid, running.pid_started), what=f"worker {running.pid} to die")
    dead = jobs.get(job.id)                       # the first read after the death says so
    assert dead.state == "failed" and dead.error.startswith("interrupted")


def test_unknown_kind_is_refused(imgai_home):
    with pytest.raises(jobs.JobError, match="unknown job kind 'nope'"):
        jobs.submit("nope", {})


def test_selftest_is_a_test_kind_registered_like_any_other(imgai_home):
    import subprocess
    import sys

    from imgai.errors import JobError

    assert jobs.KINDS["selftest"].run == "tests.job_kinds:selftest_job"
    code = "import imgai.jobs as j; print('selftest' in j.KINDS)"
    clean = {k: v for k, v in os.environ.items() if k != jobs.REGISTERED_KINDS_ENV}
    shown = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=120)
    assert shown.stdout.strip() == "False", shown.stderr      # production imgai has no selftest kind
    with pytest.raises(JobError, match="'selftest' is already"):
        jobs.register_kind("selftest", jobs.JobKind("tests.job_kinds:other"))
    with pytest.raises(JobError, match="must be 'module:function'"):
        jobs.register_kind("broken", jobs.JobKind("tests.job_kinds.selftest_job"))


def test_workers_run_below_the_app_so_a_long_job_never_starves_visitors(imgai_home, monkeypatch):
    monkeypatch.setenv("IMGAI_JOB_NICE", "7")
    job = jobs.submit("selftest", {"steps": 200, "delay": 0.05})
    running = _wait_state(job.id, ("running",))
    try:
        assert os.getpriority(os.PRIO_PROCESS, running.pid) == min(19, os.nice(0) + 7)
        group = Path(f"/proc/{running.pid}/autogroup")
        if group.exists():   # the worker's session is a scheduling group of its own: it is niced too
            assert group.read_text().split()[-1] == "7", group.read_text()
    finally:
        jobs.cancel(job.id)


def test_a_bad_job_niceness_names_the_variable(monkeypatch):
    from imgai.config import job_niceness

    monkeypatch.setenv("IMGAI_JOB_NICE", "-5")
    with pytest.raises(ValueError, match="IMGAI_JOB_NICE='-5' must be a whole number from 0 to 19"):
        job_niceness()


def test_a_job_that_waited_long_in_the_queue_gets_its_full_start_grace(imgai_home, monkeypatch):
    """The grace a starting worker has to claim its job (a warm process may spend ~10 s importing
    before it forks the first one) runs from the hand-over, not from the submission."""
    from imgai import db

    job = jobs.submit("selftest", {})
    monkeypatch.setattr(jobs, "_spawn", lambda job_id, kind: None)      # handed over; no worker claims it yet
    with db.transaction() as conn:                                       # queued 5 minutes ago
        conn.execute("UPDATE jobs SET created_at = ? WHERE id = ?", (db.now() - 300, job.id))
    jobs.dispatch()
    assert jobs.recover() == [] and jobs.get(job.id).state == jobs.STARTING
    with db.transaction() as conn:                                       # handed over 3 minutes ago, never claimed
        conn.execute("UPDATE jobs SET started_at = ? WHERE id = ?", (db.now() - 180, job.id))
    assert jobs.recover() == [job.id]
    assert jobs.get(job.id).error.startswith("interrupted")
