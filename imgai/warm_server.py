"""The warm process (`python -m imgai.warm_server KEY`, its first request on stdin, started by imgai/warm.py):
imports the libraries jobs need once, then forks one worker per request. It imports nothing of
imgai's beyond these modules (settings, priority, warm): each worker imports the rest fresh, under
its own job's environment."""

from __future__ import annotations

import fcntl
import gc
import json
import os
import signal
import socket
import sys
import time

from .warm import CONNECT_TIMEOUT_S, read_line, runtime_dir

# imported before it serves: what conversion, training and quantization jobs use
PRELOAD = ("numpy", "PIL.Image", "torch", "torchvision", "timm", "onnx", "onnxruntime", "transformers",
           "optimum.exporters.onnx:onnx_export_from_model", "safetensors.torch", "psutil")


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} warm {os.getpid()}: {message}", flush=True)


def _preload() -> None:
    from importlib import import_module

    for spec in PRELOAD:
        module, _, attr = spec.partition(":")
        try:
            loaded = import_module(module)
            if attr:
                getattr(loaded, attr)
        except Exception as exc:          # a missing optional library: its jobs import it themselves
            _say(f"could not preload {spec}: {type(exc).__name__}: {exc}")


def _fork(request: dict, closing: list) -> int:
    """Fork the job's worker: its own session, the job's log as stdout/stderr, the submitter's
    environment and folder; it never returns here."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for item in closing:
            item.close()
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(devnull)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        from imgai.worker import main

        code = main(request["job"], base_nice=request["nice"])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(name: str) -> int:
    """Body of `python -m imgai.warm_server KEY`; the first job's request comes on stdin."""
    from . import settings
    from .priority import lower_priority

    request = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    idle = settings.get("IMGAI_WARM_IDLE")               # this process's environment is the first job's
    lower_priority(settings.get("IMGAI_JOB_NICE"))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)           # the kernel reaps the workers
    t0 = time.monotonic()
    _preload()
    gc.collect()
    gc.freeze()          # the workers' collections skip these objects (and never touch their pages)
    _say(f"imported {len(sys.modules)} modules in {time.monotonic() - t0:.1f} s")
    folder = runtime_dir()
    lock = open(folder / f"{name}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:                                           # another serves this key
        _say(f"key {name} is served by another; forking job {request['job']} and leaving")
        _fork(request, [lock])
        return 0
    path = folder / f"{name}.sock"
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    listener.settimeout(idle)
    _say(f"serving {path}; first job {request['job']} → pid {_fork(request, [listener, lock])}")
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                _say(f"no job for {idle} s; exiting")
                return 0
            with conn:
                conn.settimeout(CONNECT_TIMEOUT_S)
                try:
                    request = json.loads(read_line(conn) or b"{}")
                    if request.get("stop"):
                        conn.sendall(b'{"stopping": true}\n')
                        _say("asked to stop")
                        return 0
                    pid = _fork(request, [conn, listener, lock])
                    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                    _say(f"job {request['job']} → pid {pid}")
                except (OSError, ValueError, KeyError) as exc:
                    _say(f"bad request: {type(exc).__name__}: {exc}")
    finally:
        listener.close()
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
