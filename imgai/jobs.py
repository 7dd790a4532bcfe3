"""One job system for every long task: a persisted queue in SQLite, a worker subprocess per job.

A job is queued by `submit`; `dispatch` (run by whoever submits, and by every worker as it
finishes) starts queued jobs while fewer than `IMGAI_MAX_JOBS` run. The worker reports progress
and events into the database, so the UI and CLI only read. A job found running whose worker is
gone becomes failed ("interrupted"), never stuck; its kind's `on_abort` puts its subject right.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Callable

from . import access, db, warm
from .access import Actor
from .config import max_parallel_jobs, paths
from .errors import JobError, StateError
from .log import get_logger
from .words import render, term

QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued", "starting", "running", "succeeded", "failed", "cancelled")
STATES = (QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE = (QUEUED, STARTING, RUNNING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


@dataclass(frozen=True)
class JobKind:
    run: Callable | str                     # takes a JobContext (imgai.job_context), returns a JSON-able result
    on_abort: Callable | str | None = None  # takes (job, reason) when the job dies or is cancelled;
                                            # must be idempotent (it may run in two processes)
    warm: bool = False                      # its worker needs torch & co: fork it from a warm process
    # A kind registered from outside imgai names its functions as "module:function", so the workers
    # this process starts can find them (see REGISTERED_KINDS_ENV).


# imgai's own kinds live in one table, imgai.job_kinds (normal imports of each kind's functions, so
# the import-cycle test sees them); the store loads it on first use, as it loads no other module
# above it. Others (plugins, the tests' own kinds) come through `register_kind`.
BUILT_IN_KINDS = "imgai.job_kinds"
KINDS: dict[str, JobKind] = {}
REGISTERED_KINDS_ENV = "IMGAI_JOB_KINDS"   # {name: {"run", "on_abort"}}: kinds registered by the process
_registered: dict[str, JobKind] = {}       # that started this one (a worker inherits them, and passes them on)
_built_in: list[bool] = []


def kinds() -> dict[str, JobKind]:
    """Every job kind: imgai's table and the registered ones."""
    if not _built_in:
        for name, kind in import_module(BUILT_IN_KINDS).BUILT_IN.items():
            KINDS.setdefault(name, kind)
        _built_in.append(True)
    return KINDS


def register_kind(name: str, kind: JobKind) -> None:
    """Add a job kind beside the built-in ones. Workers started from this process know it too."""
    if name in kinds() and KINDS[name] != kind:
        raise JobError(f"job kind {name!r} is already {KINDS[name]}; pick another name")
    for target in filter(None, (kind.run, kind.on_abort)):
        if not isinstance(target, str) or ":" not in target:
            raise JobError(f"job kind {name!r}: {target!r} must be 'module:function'")
    KINDS[name] = _registered[name] = kind


for _name, _spec in json.loads(os.environ.get(REGISTERED_KINDS_ENV) or "{}").items():
    KINDS[_name] = _registered[_name] = JobKind(**_spec)


@dataclass
class Job:
    id: str
    kind: str
    subject: str | None
    params: dict
    state: str
    progress: float
    stage: str
    error: str | None
    result: Any
    owner: str | None
    pid: int | None
    pid_started: float | None
    created_at: float
    started_at: float | None
    ended_at: float | None

    @property
    def done(self) -> bool:
        return self.state in FINISHED

    def to_dict(self) -> dict:
        return asdict(self)


def _to_job(row) -> Job:
    d = dict(row)
    d["params"] = json.loads(d["params"])
    d["result"] = json.loads(d["result"]) if d["result"] else None
    d["error"] = render(d["error"])   # a worker stores markers; they read in the reader's words
    return Job(**d)


def submit(kind: str, params: dict, *, subject: str | None = None, owner: str | None = None,
           before_queue: Callable[[str], None] | None = None, start: bool = True) -> Job:
    """Queue a job for `owner` (None: shared work; else a visitor, within their job quotas).
    `before_queue(job_id)` runs first (e.g. to move a model to Converting); if it raises, nothing
    is queued. Permission is the caller's to check (imgai/access.py)."""
    if kind not in kinds():
        raise JobError(f"unknown job kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    if owner is not None:
        from .limits import check_new_job

        queued = db.query(f"SELECT COUNT(*) FROM jobs WHERE owner = ? AND state = '{QUEUED}'", (owner,))[0][0]
        check_new_job(owner, queued)
    job_id = uuid.uuid4().hex[:12]
    if before_queue:
        before_queue(job_id)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, subject, params, state, owner, created_at) VALUES (?,?,?,?,?,?,?)",
            (job_id, kind, subject, json.dumps(params), QUEUED, owner, db.now()))
        record_event(conn, job_id, "info", f"queued {kind} {subject or ''}".strip())
    get_logger("imgai.jobs").info("job %s queued: %s %s", job_id, kind, subject or "")
    if start:
        dispatch()
    return get(job_id)


def get(job_id: str, *, actor: Actor | None = None) -> Job:
    """A job by id; with `actor`, only one that actor may see (another visitor's is "no job")."""
    recover()
    rows = db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if not rows or (actor is not None and not access.visible(actor, [_to_job(rows[0])])):
        raise JobError(f"no job {job_id!r}; see {term('jobs-list')}")
    return _to_job(rows[0])


def list_jobs(*, kind: str | None = None, states: tuple[str, ...] | None = None,
              owner: str | None = None, actor: Actor | None = None, limit: int = 200) -> list[Job]:
    """Newest first. `owner`: only that owner's jobs; `actor`: the jobs that actor may see (shared
    and their own; all for the local owner and admins)."""
    recover()
    sql, args = "SELECT * FROM jobs WHERE 1=1", []
    if kind:
        sql += " AND kind = ?"
        args.append(kind)
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        args.extend(states)
    if owner is not None:
        sql += " AND owner = ?"
        args.append(owner)
    if actor is not None and not actor.sees_all:
        sql += " AND (owner IS NULL OR owner = ?)"
        args.append(actor.owner)
    sql += " ORDER BY created_at DESC LIMIT ?"
    args.append(limit)
    return [_to_job(r) for r in db.query(sql, tuple(args))]


def active_job(subject: str, *kinds: str) -> Job | None:
    """The newest queued or running job of one of `kinds` on `subject` (a model id, a run's
    description), or None."""
    recover()
    rows = db.query(f"SELECT * FROM jobs WHERE subject = ? AND kind IN ({','.join('?' * len(kinds))}) "
                    f"AND state IN ({','.join('?' * len(ACTIVE))}) ORDER BY created_at DESC LIMIT 1",
                    (subject, *kinds, *ACTIVE))
    return _to_job(rows[0]) if rows else None


STAGE_PROGRESS = "progress"   # the data key of a stage event: the job's progress when the stage began


def events(job_id: str, *, after: int = 0) -> list[dict]:
    rows = db.query("SELECT * FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq", (job_id, after))
    return [{**dict(r), "data": json.loads(r["data"]) if r["data"] else None} for r in rows]


def record_event(conn, job_id: str, level: str, message: str, data: dict | None = None) -> None:
    conn.execute("INSERT INTO job_events (job_id, at, level, message, data) VALUES (?,?,?,?,?)",
                 (job_id, db.now(), level, message, json.dumps(data) if data is not None else None))


# -- liveness and recovery ----------------------------------------------------------------

WALL_CLOCK_STARTS = 1e9     # a recorded start above this is psutil's create_time (rows written before process_start)


def process_start(proc) -> float:
    """When `proc` (a psutil.Process) started: recorded with a worker's pid, so that another
    process given the same pid later is not taken for it. On Linux the start in seconds after boot,
    from /proc, which no clock change moves. psutil's create_time adds the wall clock's boot time
    and so moves with every step of the clock: an NTP step of over 2 s made every running job look
    dead (failed, "interrupted") while its worker went on. Elsewhere, that create_time."""
    try:
        with open(f"/proc/{proc.pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return proc.create_time()


def _alive(pid: int | None, started: float | None) -> bool:
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is None:
            return True
        if started > WALL_CLOCK_STARTS:
            return abs(proc.create_time() - started) < 2.0
        return abs(process_start(proc) - started) < 0.5
    except psutil.Error:
        return False


def recover() -> list[str]:
    """Mark jobs whose worker is gone as failed ("interrupted") and let their kind clean up.

    Reads reconcile: every read of jobs (`get`, `list_jobs`) and of models (`registry.get`,
    `registry.list_models`) calls this first, so no view shows a dead worker's job as running.
    One indexed query when nothing runs; a process lookup per running job otherwise."""
    stale = []
    for row in db.query(f"SELECT * FROM jobs WHERE state IN ('{STARTING}', '{RUNNING}')"):
        job = _to_job(row)
        grace = job.state == STARTING and not job.pid and db.now() - (job.started_at or job.created_at) < 120
        if grace or _alive(job.pid, job.pid_started):
            continue
        if finish(job.id, FAILED, error="interrupted: the worker process ended unexpectedly",
                   only_from=(STARTING, RUNNING)):
            run_abort(job, "interrupted")
            stale.append(job.id)
    return stale


def run_abort(job: Job, reason: str) -> None:
    kind = kinds().get(job.kind)
    if kind and kind.on_abort:
        try:
            resolve(kind.on_abort)(job, reason)
        except Exception:
            get_logger("imgai.jobs").exception("on_abort for job %s failed", job.id)


def resolve(target: Callable | str) -> Callable:
    """A kind's function: itself, or the function a registered kind names as "module:function"."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def finish(job_id: str, state: str, *, error: str | None = None, result: Any = None,
            only_from: tuple[str, ...] = ACTIVE) -> bool:
    with db.transaction() as conn:
        row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row["state"] not in only_from:
            return False
        conn.execute("UPDATE jobs SET state = ?, error = ?, result = ?, ended_at = ?, "
                     "progress = CASE WHEN ? THEN 1 ELSE progress END WHERE id = ?",
                     (state, error, json.dumps(result) if result is not None else None, db.now(),
                      state == SUCCEEDED, job_id))
        record_event(conn, job_id, "error" if state == FAILED else "info",
               f"{state}" + (f": {error}" if error else ""))
    get_logger("imgai.jobs").info("job %s %s%s", job_id, state, f": {error}" if error else "")
    return True


# -- scheduling ---------------------------------------------------------------------------

def dispatch() -> list[str]:
    """Start queued jobs while fewer than the allowed number are running."""
    recover()
    started = []
    while True:
        with db.transaction() as conn:
            busy = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ('{STARTING}', '{RUNNING}')"
                                ).fetchone()[0]
            if busy >= max_parallel_jobs():
                break
            # a visitor's jobs wait while they already have their share running
            row = conn.execute(
                f"SELECT id, kind FROM jobs AS q WHERE state = '{QUEUED}' AND (owner IS NULL OR "
                f"(SELECT COUNT(*) FROM jobs AS r WHERE r.owner = q.owner AND r.state IN ('{STARTING}', '{RUNNING}')) < ?) "
                "ORDER BY created_at, rowid LIMIT 1", (_running_per_visitor(),)).fetchone()
            if row is None:
                break
            # started_at here is when it was handed to a worker (the worker sets it again when it claims
            # the job): the grace a starting worker gets runs from it, not from the submission
            conn.execute("UPDATE jobs SET state = ?, started_at = ? WHERE id = ?", (STARTING, db.now(), row["id"]))
        _spawn(row["id"], row["kind"])
        started.append(row["id"])
    return started


def _running_per_visitor() -> int:
    from .limits import limit

    return limit("running_jobs")


def worker_env() -> dict[str, str]:
    """The environment of a job's worker. The same whether the app or CLI that queued the job starts
    it, or a worker that has just finished its own job does (its environment is this one): the warm
    process that may fork it is chosen by the environment (warm.key), and a package root added to a
    PYTHONPATH that held it already sent such jobs to fresh workers of their own."""
    package_root = str(Path(__file__).resolve().parent.parent)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != package_root]
    env = dict(os.environ, IMGAI_HOME=str(paths().home), PYTHONPATH=os.pathsep.join([package_root, *rest]))
    if _registered:
        env[REGISTERED_KINDS_ENV] = json.dumps({name: asdict(kind) for name, kind in _registered.items()})
    return env


def _spawn(job_id: str, kind: str) -> None:
    """Start the job's worker: forked from a warm process (imgai/warm.py) when its kind is warm,
    else a fresh `python -m imgai.worker`."""
    env = worker_env()
    log_path = paths().logs / f"job-{job_id}.out"
    spec = kinds().get(kind)
    if spec is not None and spec.warm and warm.enabled():
        try:
            if warm.submit(job_id, env, log_path) or warm.start_if_wanted(job_id, env, log_path):
                return
        except OSError as exc:      # no private runtime folder: a fresh worker, as without warm workers
            get_logger("imgai.jobs").warning("warm workers are off: %s", exc)
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "imgai.worker", job_id], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it, so it never lingers as a zombie


CANCEL_GRACE_S = 30.0    # how long a cancelled worker has to stop at its own checks before it is killed


def cancel(job_id: str, *, actor: Actor | None = None) -> Job:
    job = get(job_id)
    access.check(actor, "jobs.cancel", job)
    if job.done:
        raise StateError(f"job {job_id} has already {job.state}; nothing to cancel")
    if finish(job_id, CANCELLED, error="cancelled by user", only_from=(QUEUED,)):
        run_abort(job, "cancelled")
    else:
        deadline = time.time() + 60
        while not get(job_id).pid and time.time() < deadline and _alive_or_starting(get(job_id)):
            time.sleep(0.05)   # a worker that is just starting gets its pid recorded first
        job = get(job_id)
        if job.pid and _alive(job.pid, job.pid_started):
            _signal_group(job.pid, signal.SIGTERM)  # the worker cleans up, records cancelled, then exits
            deadline = time.time() + CANCEL_GRACE_S
            while time.time() < deadline and not get(job_id).done and _alive(job.pid, job.pid_started):
                time.sleep(0.05)
            if not get(job_id).done:
                # recorded first: a read (recover) between the kill and the record would take the
                # killed worker for a crash and mark the job failed ("interrupted")
                finish(job_id, CANCELLED, error="cancelled by user")
                _signal_group(job.pid, signal.SIGKILL)
        finish(job_id, CANCELLED, error="cancelled by user")
        if get(job_id).state == CANCELLED:
            run_abort(job, "cancelled")   # idempotent; the worker may have died before it could
    dispatch()
    return get(job_id)


def _alive_or_starting(job: Job) -> bool:
    return job.state == STARTING or (job.state == RUNNING and _alive(job.pid, job.pid_started))


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def wait(job_id: str, *, timeout: float | None = None, poll: float = 0.2,
         on_progress: Callable[[Job], None] | None = None) -> Job:
    """Block until the job ends (or `timeout` seconds pass), calling `on_progress` as it moves."""
    deadline = None if timeout is None else time.time() + timeout
    while True:
        job = get(job_id)
        if on_progress:
            on_progress(job)
        if job.done:
            return job
        if deadline is not None and time.time() > deadline:
            raise JobError(f"job {job_id} still {job.state} after {timeout:.0f}s")
        time.sleep(poll)
