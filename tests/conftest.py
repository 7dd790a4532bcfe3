"""Shared fixtures: a private data folder per test, and the real app served on a free port.

Tiny models are built in code, seeded (see tests/factories.py); nothing is downloaded.
"""

from __future__ import annotations

import os
import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"

# Keep every test offline and quiet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["tests.factories"]


def _register_test_job_kinds() -> None:
    from imgai.jobs import JobKind, register_kind

    register_kind("selftest", JobKind("tests.job_kinds:selftest_job"))
    register_kind("self-cancel", JobKind("tests.job_kinds:self_cancel_job"))
    register_kind("stubborn", JobKind("tests.job_kinds:stubborn_job"))
    register_kind("wrapped-cancel", JobKind("tests.job_kinds:wrapped_cancel_job"))


_register_test_job_kinds()


# The files that take longest, longest first (a full run on 2 cores, summed from its junit report:
# test_flows 318 s, test_quantize 138 s, … test_families 32 s). `make test` hands them out first
# (xdist keeps this order with --no-loadscope-reorder; by default it sorts files by their number of
# tests), so the run does not end with one process alone on a long file while the other idles.
# Files not listed follow in their usual order. A stale list costs balance, never a result.
SLOWEST_FIRST = ("test_flows", "test_quantize", "test_signin_two_users", "test_app", "test_ray_tag",
                 "test_ray_train", "test_install", "test_stranger", "test_first_user", "test_train_app",
                 "test_ray_quantize", "test_train_jobs", "test_hub_app", "test_signin", "test_train_pretrained",
                 "test_diffusion_convert", "test_families")


def pytest_collection_modifyitems(config, items):
    """Slow files first (SLOWEST_FIRST); tests marked `cuda` skip on machines without a CUDA GPU
    (CI never has one)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))     # stable: a file keeps its order
    cuda = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (run bench/gpu_check.sh on the GPU machine)")
        for item in cuda:
            item.add_marker(skip)


# A job's worker runs niced 10 below the app (its own session's autogroup too), so a training run
# never starves visitors. Next to a test run on a busy machine that niceness starves the job
# instead: a tiny model's conversion in the Browse → Convert flow took 3 minutes to load and ran out
# its 300 s wait (whatever test ran before it). Tests run workers at their own priority; the
# niceness itself is tested in test_jobs.py (test_workers_run_below_the_app_…).
# Set for the whole test process too: a test that brings its own IMGAI_HOME (the demo's first start,
# the CLI's first use) starts workers as well, and beside the other xdist worker a niced demo job took
# 252 s where it takes 25.
WORKERS_AT_TEST_PRIORITY = {"IMGAI_JOB_NICE": "0"}
os.environ.update(WORKERS_AT_TEST_PRIORITY)
# The warm processes the suite starts (imgai/warm.py: one per environment, shared by every test
# with that environment) leave soon after the last job, and the session asks them to leave at its end.
os.environ["IMGAI_WARM_IDLE"] = "120"


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):       # the controller (or a run without xdist)
        from imgai import warm

        warm.stop_all()


@pytest.fixture(autouse=True)
def _words_of_the_process():
    """A test that builds the app (app.build_app sets the process's words to the app's) leaves the
    next test's messages as it found them: the CLI's words, unless a test sets others."""
    from imgai import words

    before = words.use(words.CLI)
    words.use(before)
    yield
    words.use(before)


@pytest.fixture
def imgai_home(tmp_path, monkeypatch):
    """A fresh, private IMGAI_HOME for one test."""
    home = tmp_path / "imgai_home"
    monkeypatch.setenv("IMGAI_HOME", str(home))
    monkeypatch.setenv("IMGAI_NO_DEMO", "1")
    for key, value in WORKERS_AT_TEST_PRIORITY.items():
        monkeypatch.setenv(key, value)
    yield home
    stop_job_workers(home)          # a job the test left running must not slow the next one down


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (`item.rep_call`), so a fixture can tell in its
    teardown that the test failed (the browser pages screenshot themselves then)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    if report.when == "call" and report.failed:
        _dump_threads(OUTPUT / item.name.replace("/", "_").replace("[", "_").replace("]", ""))
    return report


def _dump_threads(folder: Path) -> None:
    """Where every other thread of this test process stood when its test failed (an app served in
    this process by `served_tab` runs its handlers in them): threads-at-failure.txt."""
    import threading
    import traceback

    frames = sys._current_frames()
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and t.ident in frames]
    if others:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "threads-at-failure.txt").write_text("\n".join(
            f"--- {t.name} (daemon={t.daemon})\n{''.join(traceback.format_stack(frames[t.ident]))}" for t in others))


@pytest.fixture
def output_dir(request) -> Path:
    """A folder kept after the run (screenshots, logs) under test-output/<test name>."""
    d = OUTPUT / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    d.mkdir(parents=True, exist_ok=True)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_tab(module):
    """One self-contained tab (`module.build(demo)`) alone in a Blocks app, served in this process on a
    free port; yields its URL."""
    import gradio as gr

    with gr.Blocks() as demo:
        module.build(demo)
    with served(demo) as url:
        yield url


@contextlib.contextmanager
def served(demo):
    """A Blocks app served in this process on a free port, as the app serves it (imgai's queue and
    middleware); yields its URL."""
    from ui.common import queue
    from ui.page import middleware

    queue(demo)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                app_kwargs={"middleware": middleware()})
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


class AppServer:
    def __init__(self, home: Path, env: dict | None = None):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = home.parent / f"app-{self.port}.log"
        home.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, "IMGAI_HOME": str(home), "GRADIO_SERVER_PORT": str(self.port),
                    "GRADIO_SERVER_NAME": "127.0.0.1", "PYTHONUNBUFFERED": "1", **WORKERS_AT_TEST_PRIORITY,
                    **(env or {})}
        full_env = {k: v for k, v in full_env.items() if v is not None}   # env={"X": None} unsets X
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full_env,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120) -> None:
        import http.client
        import urllib.request

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "gradio_api/info", timeout=2):
                    return True
            except (OSError, http.client.HTTPException):      # not listening yet
                return False

        try:
            wait_until(answers, timeout, f"app.py to answer on {self.url}", every=0.1)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}:\n{self.log.read_text()[-4000:]}") from None

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False)

    def job_log(self, job_id: str, chars: int = 4000) -> str:
        """What a failed assertion about a job should show: the job's record, its worker's output
        and the end of the app's log (a job's error is otherwise out of a test's sight)."""
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.home / "registry.sqlite")) as conn:
            record = conn.execute("SELECT state, error FROM jobs WHERE id = ?", (job_id,)).fetchone()
        worker = self.home / "logs" / f"job-{job_id}.out"
        return (f"job {job_id}: {record}\n--- its worker's output\n"
                f"{worker.read_text()[-chars:] if worker.is_file() else '(none)'}\n"
                f"--- the app's log\n{self.log.read_text()[-chars:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        stop_job_workers(self.home)


def stop_job_workers(home: Path) -> list[int]:
    """Kill the job workers of the data folder `home` (each leads its own session, so its process
    group goes: a conversion's or the demo's worker outlives the app that started it, by design,
    and would go on taking the CPU from the next test). Returns their pids. A fresh worker is found
    by its command line and environment; one forked by a warm process has the warm process's, so
    it is found by the pid its job recorded."""
    import signal
    import sqlite3

    import psutil

    from imgai import jobs

    home = Path(home).resolve()
    pids = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "imgai.worker" in (proc.info["cmdline"] or []) \
                    and Path(proc.environ().get("IMGAI_HOME", "")).resolve() == home:
                pids.add(proc.pid)
        except (psutil.Error, PermissionError):
            continue
    if (home / "registry.sqlite").is_file():
        with contextlib.closing(sqlite3.connect(home / "registry.sqlite", timeout=10)) as db, \
                contextlib.suppress(sqlite3.OperationalError):
            for pid, started in db.execute("SELECT pid, pid_started FROM jobs WHERE pid IS NOT NULL "
                                           "AND state IN ('starting', 'running')"):
                with contextlib.suppress(psutil.Error):
                    if jobs._alive(pid, started):
                        pids.add(pid)
    stopped = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            stopped.append(pid)
    for pid in stopped:
        try:
            psutil.Process(pid).wait(10)
        except (psutil.Error, ChildProcessError):
            pass
    return stopped


@pytest.fixture
def app_server(tmp_path):
    """`python app.py` for real, on a free port, with a private data folder (demo model included)."""
    server = AppServer(tmp_path / "app_home")
    yield server
    server.stop()


@pytest.fixture
def bare_server(tmp_path):
    """`python app.py` on a fresh data folder without the demo (IMGAI_NO_DEMO=1): for a test that
    does not use the demo, whose preparing job would only take CPU from it."""
    server = AppServer(tmp_path / "bare_home", env={"IMGAI_NO_DEMO": "1"})
    yield server
    server.stop()


@pytest.fixture
def cli(capsys):
    """Run the imgai CLI in-process: `code, out, err = cli("models", "list", "--json")`."""
    from imgai.cli import main

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:   # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
