"""Warm workers (imgai/warm.py): a job whose kind needs torch is forked from a process that imported
it once, with the submitter's environment, folder and priority, and can be cancelled like any other."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import psutil
import pytest

from imgai import jobs, warm
from tests.waiting import wait_until


@pytest.fixture(scope="module", autouse=True)
def _probe_kinds():
    for name, is_warm in (("probe", False), ("warmprobe", True)):
        jobs.register_kind(name, jobs.JobKind("tests.job_kinds:probe_job", warm=is_warm))


def _run(kind: str, **params) -> dict:
    job = jobs.wait(jobs.submit(kind, params).id, timeout=240)
    assert job.state == "succeeded", (job.state, job.error)
    return job.result


def _run_to_its_end(kind: str, **params) -> dict:
    """_run, then wait for the job's worker to exit. A worker that has finished its job starts the
    next queued one with its own environment and folder (jobs.dispatch): a test that changes them
    for its next job must not queue it while the last worker may still pick it up."""
    result = _run(kind, **params)
    wait_until(lambda: _exited(result["pid"]), what=f"worker {result['pid']} to exit")
    return result


def _exited(pid: int) -> bool:
    """`pid` is gone, or a zombie (exited, not yet reaped by its parent)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _warm_process(pid: int) -> psutil.Process:
    parent = psutil.Process(pid)
    assert parent.cmdline()[1:3] == ["-m", "imgai.warm_server"], parent.cmdline()
    return parent


@pytest.fixture
def new_key(monkeypatch):
    """An environment no warm process has served yet (a variable the libraries might read), so the
    other test process's jobs never share this test's warm process."""
    monkeypatch.setenv("WARM_TEST_KEY", uuid.uuid4().hex)


def test_a_warm_kind_is_forked_from_a_process_that_imported_torch(imgai_home, new_key, monkeypatch, tmp_path):
    assert not _run("probe")["torch_preloaded"]           # a fresh worker imports torch only when a job needs it

    first = _run_to_its_end("warmprobe")                   # a key's first job: a fresh worker, nothing warm started
    assert not first["torch_preloaded"]
    monkeypatch.setenv("IMGAI_TEST_PROBE", "second")
    second = _run_to_its_end("warmprobe")                  # the second starts the warm process, its first fork
    monkeypatch.setenv("IMGAI_TEST_PROBE", "third")
    monkeypatch.chdir(tmp_path)
    third = _run("warmprobe")

    assert second["torch_preloaded"] and third["torch_preloaded"]
    assert second["ppid"] == third["ppid"] and second["pid"] != third["pid"]   # one warm process, two forks
    server = _warm_process(second["ppid"])
    assert (second["probe"], third["probe"]) == ("second", "third")         # each job's own environment
    assert Path(third["cwd"]) == tmp_path.resolve()
    assert second["nice"] == third["nice"] == min(19, os.nice(0) + int(os.environ["IMGAI_JOB_NICE"]))
    assert all((imgai_home / "logs" / f"job-{job.id}.out").is_file() for job in jobs.list_jobs())
    assert server.is_running()


def test_a_warm_job_is_cancelled_like_any_other(imgai_home, new_key):
    _run("warmprobe")
    job = jobs.submit("warmprobe", {"seconds": 120})
    running = wait_until(lambda: (j := jobs.get(job.id)).state == "running" and j.pid and j, timeout=240,
                         what="the warm job to run")
    _warm_process(psutil.Process(running.pid).ppid())
    assert jobs.cancel(job.id).state == "cancelled"
    wait_until(lambda: not jobs._alive(running.pid, running.pid_started), what="the forked worker to go")


def test_a_warm_process_killed_leaves_a_stale_socket_that_the_next_job_replaces(imgai_home, new_key):
    _run("warmprobe")
    before = _run("warmprobe")
    assert before["torch_preloaded"]
    os.kill(before["ppid"], signal.SIGKILL)
    wait_until(lambda: _exited(before["ppid"]), what="the warm process to die")
    after = _run("warmprobe")                             # refused connection → a new warm process
    assert after["torch_preloaded"] and after["ppid"] != before["ppid"]
    _warm_process(after["ppid"])
    assert _run("warmprobe")["ppid"] == after["ppid"]


def test_off_means_a_fresh_worker(imgai_home, monkeypatch):
    monkeypatch.setenv("IMGAI_WARM_WORKER", "0")
    assert not _run("warmprobe")["torch_preloaded"]


def test_one_warm_process_per_environment_the_libraries_read():
    env = {"PATH": "/usr/bin", "HF_ENDPOINT": "http://a", "IMGAI_HOME": "/x", "GRADIO_SERVER_PORT": "1",
           "PYTEST_CURRENT_TEST": "t", "IMGAI_JOB_NICE": "10"}
    same = {**env, "IMGAI_HOME": "/y", "GRADIO_SERVER_PORT": "2", "PYTEST_CURRENT_TEST": "u"}
    assert warm.key(env) == warm.key(same)
    assert warm.key(env) != warm.key({**env, "HF_ENDPOINT": "http://b"})    # read by huggingface_hub on import
    assert warm.key(env) != warm.key({**env, "IMGAI_JOB_NICE": "5"})        # the warm process's own priority


def test_the_runtime_folder_must_be_private(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    folder = warm.runtime_dir()
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o755)
    with pytest.raises(PermissionError, match="not a private folder"):
        warm.runtime_dir()
    assert not warm.submit("job", {"PATH": "/usr/bin"}, tmp_path / "log")   # refused: a fresh worker instead


def test_a_job_started_by_a_finishing_worker_goes_to_the_same_warm_process(imgai_home, new_key, monkeypatch):
    """A worker that has finished its job starts the next queued one (jobs.dispatch), from inside its
    own environment: worker_env() built there must be the submitter's, or the job's warm key differs.
    It added the package root to PYTHONPATH a second time, so such a job ran in a fresh worker of its
    own, a child of the ending worker (test_a_warm_job_is_cancelled_like_any_other saw it once)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/somewhere/else", str(Path(jobs.__file__).parent.parent)]))
    submitter = jobs.worker_env()
    for name, value in submitter.items():            # the worker's own environment
        monkeypatch.setenv(name, value)
    in_the_worker = jobs.worker_env()
    assert in_the_worker == submitter and warm.key(in_the_worker) == warm.key(submitter)
    assert submitter["PYTHONPATH"].split(os.pathsep) == [str(Path(jobs.__file__).parent.parent), "/somewhere/else"]
