"""How long `python app.py` takes to answer, side by side from one run: as it starts (ui/__init__.py
spares gradio's import its type-stub rewriting, `_SkipPyiRewrite`) and with gradio imported first, so
that gradio rewrites its stubs as it does by default.

    .venv/bin/python bench/app_start.py [--rounds 5]

Each start is the real app (IMGAI_NO_DEMO=1, a private data folder, a free port) in a fresh process,
timed from its start until `GET /gradio_api/info` answers (polled every 20 ms) and then stopped; the
two settings take turns. The bench prints the median seconds of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# the same app.py, with gradio imported before ui: the finder is not installed, gradio runs as shipped
GRADIO_FIRST = "import gradio, runpy; runpy.run_path('app.py', run_name='__main__')"


def start_seconds(code: list[str], home: Path) -> float:
    from tests.conftest import free_port

    port = free_port()
    env = {**os.environ, "IMGAI_HOME": str(home), "IMGAI_NO_DEMO": "1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"app.py exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2):
                    return time.perf_counter() - t0
            except OSError:
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = {"imgai (stub rewriting skipped)": ["app.py"], "gradio as shipped": ["-c", GRADIO_FIRST]}
    times: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as tmp:
        start_seconds(settings["imgai (stub rewriting skipped)"], Path(tmp) / "warmup")   # the disk cache
        for r in range(args.rounds):
            for name, code in settings.items():
                times[name].append(start_seconds(code, Path(tmp) / f"{r}-{len(times[name])}-{name[:5]}"))
                print(f"round {r + 1}: {name}: {times[name][-1]:.2f} s", flush=True)
    ours, reference = (statistics.median(t) for t in times.values())
    print(f"python app.py until it answers, median of {args.rounds}: {ours:.2f} s with the stub rewriting "
          f"skipped vs {reference:.2f} s with gradio as shipped: {reference / ours:.2f}x faster")


if __name__ == "__main__":
    main()
