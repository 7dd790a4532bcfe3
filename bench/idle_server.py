"""What an idle app costs: the CPU a started `python app.py` takes while nobody uses it, with gradio's
own queue polling (every 1 ms when it has no work) and with imgai's (`ui.common.queue`: every
QUEUE_POLL_S), side by side from one run, then the delay an event's start can gain.

    .venv/bin/python bench/idle_server.py [--seconds 20]

Each setting runs the real app (IMGAI_NO_DEMO=1, a private data folder) in its own process; the two
take turns, twice each, and the bench prints CPU-seconds per minute of idling for both and their ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# the app with gradio's own polling: ui.common.queue made a no-op for this process only
GRADIO_DEFAULT = ("import ui.common as c, gradio as gr; "
                  "c.queue = lambda demo, **kw: demo.queue(**kw) or demo; "
                  "import runpy; runpy.run_path('app.py', run_name='__main__')")


def idle_cpu(code: list[str], seconds: float) -> float:
    """CPU-seconds per minute the app process takes idling `seconds` once it answers."""
    import psutil

    from tests.conftest import free_port
    from tests.waiting import wait_until

    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "IMGAI_HOME": home, "IMGAI_NO_DEMO": "1", "GRADIO_SERVER_PORT": str(port)}
        proc = subprocess.Popen([sys.executable, *code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            def answers():
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2)
                    return True
                except OSError:
                    return False
            wait_until(answers, 120, "the app to answer", every=0.5)
            time.sleep(2)                                  # let start-up work settle
            p = psutil.Process(proc.pid)
            before = sum(p.cpu_times()[:2])
            time.sleep(seconds)
            return (sum(p.cpu_times()[:2]) - before) * 60 / seconds
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    from ui.common import QUEUE_POLL_S

    runs = {"gradio's 1 ms": [], f"imgai's {QUEUE_POLL_S * 1000:.0f} ms": []}
    for _ in range(2):
        runs["gradio's 1 ms"].append(idle_cpu(["-c", GRADIO_DEFAULT], args.seconds))
        runs[f"imgai's {QUEUE_POLL_S * 1000:.0f} ms"].append(idle_cpu(["app.py"], args.seconds))
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
    print("| queue polling | idle app CPU-s per minute (each run) | mean |")
    print("|---|---|---|")
    means = {}
    for name, values in runs.items():
        means[name] = sum(values) / len(values)
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {means[name]:.2f} |")
    default, ours = means.values()
    print(f"an event waits at most {QUEUE_POLL_S * 1000:.0f} ms longer to start; "
          f"idle_cpu_gradio_default_vs_imgai={default / ours:.1f}")


if __name__ == "__main__":
    main()
