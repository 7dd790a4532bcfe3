"""Warm workers: a process that has imported torch, timm, onnx and Optimum's exporter once forks
one worker per job, so a conversion, a training run or a quantization starts in milliseconds instead
of spending ~10 s (2 cores) importing the same libraries again. This is the side that asks; the
warm process is imgai/warm_server.py.

    dispatch → submit(job) ──unix socket──▶ warm process (python -m imgai.warm_server, imports done)
                                                │ fork
                                                ▼
                                 worker: own session, the job's log, the submitter's environment,
                                         folder and priority → imgai.worker.main(job_id)

- One warm process per *key*: the Python, its site-packages, and every environment variable except
  those the libraries never read at import (IMGAI_* but IMGAI_JOB_NICE, GRADIO_*, PYTEST_*). A
  forked worker gets the submitter's exact environment, so what is read later is right; what the
  libraries read as they were imported (HF_ENDPOINT, HF_HOME, OMP_NUM_THREADS…) is the same by
  construction.
- It imports third-party libraries, and of imgai only settings, priority and these two modules:
  each worker imports the rest fresh, with its own IMGAI_HOME and settings.
- It starts with the second job of its key (the first runs in a fresh worker, which imports only
  what it needs: a key that has one job never pays for a warm process), that job as its first fork,
  and exits after `IMGAI_WARM_IDLE` seconds without a job. A second one that finds the key taken
  (a lock file) runs its first job and exits.
- Before it serves it freezes its objects out of the garbage collector (gc.freeze), so a worker's
  collections never walk, nor copy, the thousands of modules it was born with.
- Anything wrong with it (no socket, a stale one, a refused request) falls back to starting one;
  a job forked twice by a race runs once (the worker claims STARTING → RUNNING in a transaction,
  and the loser exits).
- The socket lives in a folder only this user can enter (checked before every use).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# environment variables no preloaded library reads as it is imported: they may differ between jobs of one key
PER_JOB_PREFIXES = ("IMGAI_", "GRADIO_", "PYTEST_")
SHARED_SETTINGS = ("IMGAI_JOB_NICE",)      # the warm process runs at the jobs' priority: one key per niceness
CONNECT_TIMEOUT_S = 5.0


def enabled() -> bool:
    from . import settings

    return settings.get("IMGAI_WARM_WORKER")


def runtime_dir() -> Path:
    """The folder of the warm processes' sockets, locks and logs: made private to this user."""
    folder = Path(tempfile.gettempdir()) / f"imgai-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.lstat()
    if not folder.is_dir() or folder.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{folder} is not a private folder of this user; warm workers are off")
    return folder


def key(env: dict[str, str]) -> str:
    """Which warm process may fork a job with environment `env`."""
    site = next((p for p in sys.path if p.endswith("site-packages")), sys.prefix)
    try:
        installed = os.stat(site).st_mtime_ns            # a pip install changes it
    except OSError:
        installed = 0
    shared = sorted((k, v) for k, v in env.items() if not k.startswith(PER_JOB_PREFIXES) or k in SHARED_SETTINGS)
    text = json.dumps([sys.executable, str(Path(__file__).resolve().parent), installed, shared])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _request(job_id: str, env: dict[str, str], log: Path) -> dict:
    return {"job": job_id, "env": env, "log": str(log), "cwd": os.getcwd(), "nice": os.nice(0)}


def submit(job_id: str, env: dict[str, str], log: Path) -> bool:
    """Ask the key's warm process to fork the job's worker; False when there is none to ask
    (then `start` one) or it refused."""
    try:
        path = runtime_dir() / f"{key(env)}.sock"
        reply = json.loads(_ask(path, _request(job_id, env, log)) or b"{}")
    except (OSError, ValueError):
        return False
    if reply.get("pid"):
        path.with_suffix(".seen").touch()          # the key's last job: start_if_wanted reads it
    return bool(reply.get("pid"))


def start_if_wanted(job_id: str, env: dict[str, str], log: Path) -> bool:
    """Start a warm process for this job when its key has had a job within `IMGAI_WARM_IDLE`
    seconds (a second job: more are likely); the first job of a key runs in a fresh worker, which
    imports only what it needs, and leaves the mark. True when a warm process took the job."""
    from . import settings

    mark = runtime_dir() / f"{key(env)}.seen"
    recent = mark.is_file() and time.time() - mark.stat().st_mtime < settings.get("IMGAI_WARM_IDLE")
    mark.touch()
    if recent:
        start(job_id, env, log)
    return recent


def start(job_id: str, env: dict[str, str], log: Path) -> None:
    """Start a warm process for the key of `env`, whose first fork is this job's worker (the request
    goes through its stdin: the environment may hold a token, and is never written to a file)."""
    folder = runtime_dir()
    name = key(env)
    with open(folder / f"{name}.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "imgai.warm_server", name], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.PIPE, start_new_session=True)
    with proc.stdin:
        proc.stdin.write(json.dumps(_request(job_id, env, log)).encode())


def stop_all() -> int:
    """Ask every warm process of this user to exit (tests end with it); returns how many were asked."""
    try:
        sockets = list(runtime_dir().glob("*.sock"))
    except OSError:
        return 0
    asked = 0
    for path in sockets:
        try:
            _ask(path, {"stop": True})
            asked += 1
        except OSError:
            continue
    return asked


def _ask(path: Path, request: dict) -> bytes:
    """Send one JSON line to the warm process listening at `path`; its reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(CONNECT_TIMEOUT_S)
        conn.connect(str(path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        return read_line(conn)


def read_line(conn: socket.socket, limit: int = 1 << 22) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
