"""What an idle app costs, side by side from one run.

- no visitor: the CPU a started `python app.py` takes while nobody uses it, with gradio's own queue
  polling (every 1 ms when it has no work) and with imgai's (`ui.common.queue`: every QUEUE_POLL_S);
- `--page`: one visitor's page left open in Chromium (Debian's), app and browser together, with the
  page's change watch (ui/page.py: a plain GET of /imgai/revision every POLL_S, a gradio event only
  when it moves) and with what it replaced (a gr.Timer: one queued gradio event per tick).
- `--busy`: that page open on its Start tab while a job reports progress (the revision moves at
  every check), with only the open tab's lists reading (ui/page.py) and with every tab's lists
  reading on each move, as before.

    .venv/bin/python bench/idle_server.py [--seconds 20] [--page | --busy]

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


# the app with the page's revision read by a gr.Timer tick (the reference for --page)
TIMER_PAGE = ("import gradio as gr, ui.page as p; from imgai import changes\n"
              "def start(self):\n"
              "    self.demo.load(changes.revision, None, [self.revision], api_name=False, show_progress='hidden')\n"
              "    gr.Timer(p.POLL_S).tick(changes.revision, None, [self.revision], api_name=False,\n"
              "                            show_progress='hidden', concurrency_limit=None)\n"
              "p.Page.start = start\n"
              "import runpy; runpy.run_path('app.py', run_name='__main__')")


# the app with every tab's lists reading on each move of the revision (the reference for --busy)
EVERY_TAB_PAGE = ("import ui.page as p\n"
                  "listen = p.Page.listen\n"
                  "p.Page.listen = lambda self, *a, **k: listen(self, *a, **{**k, 'every_tab': True})\n"
                  "import runpy; runpy.run_path('app.py', run_name='__main__')")


def idle_cpu(code: list[str], seconds: float, page: bool = False, busy: bool = False) -> float:
    """CPU-seconds per minute the app process (and, with `page`, a Chromium page open on it) takes
    idling `seconds` once it answers (and the page has loaded and settled)."""
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
            if not page:
                time.sleep(2)                                  # let start-up work settle
                p = psutil.Process(proc.pid)
                before = sum(p.cpu_times()[:2])
                time.sleep(seconds)
                return (sum(p.cpu_times()[:2]) - before) * 60 / seconds
            return _page_cpu(f"http://127.0.0.1:{port}/", proc.pid, seconds, home=home if busy else None)
        finally:
            proc.terminate()
            proc.wait(10)


def _moving_job(home: str, seconds: float) -> str:
    """A job in `home` that reports progress every 0.3 s for `seconds` (tests/job_kinds.py)."""
    os.environ["IMGAI_HOME"] = home
    from imgai import jobs

    if "selftest" not in jobs.kinds():
        jobs.register_kind("selftest", jobs.JobKind("tests.job_kinds:selftest_job"))
    return jobs.submit("selftest", {"steps": int(seconds / 0.3) + 20, "delay": 0.3}).id


def _page_cpu(url: str, app_pid: int, seconds: float, home: str | None = None) -> float:
    import psutil
    from playwright.sync_api import sync_playwright

    from tests.browser_fixtures import ARGS, CHROMIUM, VIEWPORT

    def cpu() -> float:
        procs = [psutil.Process(app_pid), *psutil.Process(os.getpid()).children(recursive=True)]   # + Chromium
        total = 0.0
        for p in {p.pid: p for p in procs}.values():
            try:
                if "imgai.worker" in p.cmdline():     # the job's own work is the same in both
                    continue
                total += sum(p.cpu_times()[:2])
            except psutil.Error:
                pass
        return total

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url, wait_until="load")
        page.wait_for_timeout(15_000)                          # the page's load events settle
        job = _moving_job(home, seconds) if home else None
        if job:
            page.wait_for_timeout(3000)                        # its worker has started
        before = cpu()
        page.wait_for_timeout(seconds * 1000)
        used = cpu() - before
        browser.close()
    if job:
        from imgai import jobs

        jobs.cancel(job)
    return used * 60 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--page", action="store_true", help="one visitor's page open in Chromium")
    parser.add_argument("--busy", action="store_true", help="that page open while a job moves the revision")
    args = parser.parse_args()
    from ui.common import QUEUE_POLL_S
    from ui.page import POLL_S

    if args.busy:
        settings = {"every tab reads": ["-c", EVERY_TAB_PAGE], "the open tab reads": ["app.py"]}
        what, key = "beside a running job", "busy_page_cpu_every_tab_vs_open_tab"
    elif args.page:
        settings = {"gr.Timer tick": ["-c", TIMER_PAGE], "revision watch": ["app.py"]}
        what, key = f"change check every {POLL_S} s", "idle_page_cpu_timer_vs_watch"
    else:
        settings = {"gradio's 1 ms": ["-c", GRADIO_DEFAULT], f"imgai's {QUEUE_POLL_S * 1000:.0f} ms": ["app.py"]}
        what, key = "queue polling", "idle_cpu_gradio_default_vs_imgai"
    runs = {name: [] for name in settings}
    for _ in range(2):
        for name, code in settings.items():
            runs[name].append(idle_cpu(code, args.seconds, page=args.page or args.busy, busy=args.busy))
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
    page = args.page or args.busy
    print(f"| {what} | {'CPU-s' if args.busy else 'idle CPU-s'} per minute{' (app + browser)' if page else ''}, "
          "each run | mean |")
    print("|---|---|---|")
    means = {}
    for name, values in runs.items():
        means[name] = sum(values) / len(values)
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {means[name]:.2f} |")
    reference, ours = means.values()
    print(f"{key}={reference / ours:.1f}")


if __name__ == "__main__":
    main()
