"""Load on a public app: N concurrent anonymous taggers (gradio_client, no sign-in) while a training
job runs, as strangers use a Space.

The bench makes a private data folder, converts a model (the demo EfficientNet-Lite0 with real
ImageNet weights; `--quick`: a tiny seeded timm MobileNetV3 instead), starts a training job from
the console (the local owner), then starts `python app.py` with IMGAI_PUBLIC=1 (the public policy
without a Space) and drives `/tag` from 1, 4 and 16 concurrent clients, each its own session and
uploading one photo per call. Every answer is compared with the answer the app gave before the load
(whose top tag must equal imgai's own in-process `tag()`); meanwhile another client refreshes the
models table (`/convert_refresh`) twice a second, to show the app answers while it trains.

    .venv/bin/python bench/space_load.py [--quick] [--calls 8] [--levels 1,4,16]

Prints the machine's load (uptime) beside a table of p50/p95 latency and throughput per level, and
the ratio p95@16 / single call (median at 1). Target: ≤ 4 on 2 cores, every answer right. Where the
time goes: "app CPU/call" is the app process's CPU per answered call; "visitor CPU/call" is the visitor
processes' (gradio_client: upload, queue, stream), which a real Space's cores do not carry but
these do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")
TARGET = 4.0
CALL_TIMEOUT = 180   # s: a call not answered by then counts as an error (and the bench goes on)
TINY_RESNET = {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128], "stem_width": 16}


def cli(*args) -> None:
    """The imgai CLI in this process (always the local owner)."""
    from imgai.cli import main

    code = main([str(a) for a in args])
    if code:
        raise SystemExit(f"imgai {' '.join(map(str, args))} exited with {code}")


def photos(folder: Path) -> list[Path]:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in PHOTOS:
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).convert("RGB").save(path, quality=92)
        out.append(path)
    return out


def tiny_model(folder: Path) -> Path:
    import timm
    import torch
    from timm.models._hub import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model("mobilenetv3_small_050", num_classes=5).eval()
    save_for_hf(model, folder, model_config={"label_names": ["ant", "bee", "cat", "dog", "eel"]},
                safe_serialization=True)
    return folder


def prepare_model(work: Path, quick: bool) -> tuple[str, str]:
    """Register and convert the model to tag with; (model id, description)."""
    from imgai import registry

    from imgai import jobs

    t0 = time.perf_counter()
    if quick:
        cli("models", "add", tiny_model(work / "tiny"), "--name", "tiny-mobilenetv3")
        model_id, what = registry.list_models()[0].id, "tiny seeded timm mobilenetv3_small_050 (5 labels)"
        cli("models", "convert", model_id)
        job = jobs.list_jobs(kind="convert", limit=1)[0]
    else:
        from imgai.demo import MODEL_ID, ensure_demo

        model_id, what = MODEL_ID, "demo EfficientNet-Lite0, ImageNet weights"
        job = ensure_demo()     # its own job: weights → registry → ONNX → validated, enabled, default
    if job is not None:
        job = jobs.wait(job.id, timeout=1800)
        if job.state != jobs.SUCCEEDED:
            raise SystemExit(f"preparing {model_id} {job.state}: {job.error}")
    model = registry.get(model_id)
    if not model.enabled:
        cli("models", "enable", model_id)
    if not registry.get(model_id).default:
        cli("models", "default", model_id)
    return model_id, f"{what}, converted in {time.perf_counter() - t0:.0f} s"


def start_training(work: Path, epochs: int) -> str:
    """A long training job (tiny ResNet on coloured shapes); returns its id."""
    import json

    from imgai import jobs
    from tests.train_fixtures import make_shapes

    shapes = make_shapes(work / "shapes", per_class=40, size=48)
    cli("train", "create", "--architecture", "resnet18", "--name", "bench-shapes", "--model-args",
        json.dumps(TINY_RESNET))
    cli("train", "start", "bench-shapes", "--data", shapes, "--epochs", epochs, "--batch-size", 16,
        "--image-size", 48)
    job = jobs.list_jobs(kind="train", limit=1)[0]
    deadline = time.time() + 120
    while jobs.get(job.id).state != jobs.RUNNING:
        if time.time() > deadline or jobs.get(job.id).done:
            raise SystemExit(f"training job {job.id} did not start: {jobs.get(job.id)}")
        time.sleep(0.5)
    return job.id


def floor(r: dict) -> float:
    """The least time a call can take at this level on these cores: n visitors calling back to back
    share the cores, so a round of n calls needs n × (app + visitor CPU per call) / cores."""
    return r["n"] * (r["server_cpu"] + r["client_cpu"]) / (os.cpu_count() or 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


class Tagger:
    """One anonymous visitor: its own gradio_client session."""

    def __init__(self, url: str, model_id: str):
        from gradio_client import Client

        # the answer is the table; the files (gallery, CSV, JSON) stay on the server, as a
        # browser fetches them after the answer, and the bench's own downloads would eat the CPU
        self.client = Client(url, verbose=False, download_files=False)
        self.model_id = model_id

    def tag(self, path: Path) -> str:
        from gradio_client import handle_file

        job = self.client.submit([handle_file(str(path))], "", self.model_id, 3, 0.0, api_name="/tag")
        out = job.result(timeout=CALL_TIMEOUT)
        summary = out[0]
        table = next(o for o in out if isinstance(o, dict) and o.get("headers") == ["Image", "Tags"])
        if not summary.startswith("Tagged 1 of 1"):
            raise AssertionError(f"{path.name}: {summary}")
        return table["data"][0][1]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def visitor(url: str, model_id: str, paths: list[str], expected: dict, calls: int, first: int, ready, go,
            report: str) -> None:
    """One visitor in a process of its own (as visitors are independent machines, and one
    process's GIL would queue sixteen clients): connect, wait for the start, tag `calls` photos,
    write what happened to `report` (JSON)."""
    import json

    tagger, failure = None, None
    try:
        for attempt in range(5):    # connecting fetches the API description; under load it can time out
            try:
                tagger = Tagger(url, model_id)
                break
            except Exception as exc:            # noqa: BLE001 - retried, then reported
                failure = f"could not connect: {type(exc).__name__}: {exc}"[:200]
                time.sleep(2 * (attempt + 1))
    finally:
        ready.release()
    if tagger is None:
        Path(report).write_text(json.dumps([[], [], [failure] * calls, 0.0]))
        os._exit(0)
    go.wait()
    latencies, wrong, errors = [], [], []
    cpu0 = time.process_time()
    for c in range(calls):
        path = Path(paths[(first + c) % len(paths)])
        t0 = time.perf_counter()
        try:
            answer = tagger.tag(path)
        except Exception as exc:                # noqa: BLE001 - counted and shown
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        latencies.append(time.perf_counter() - t0)
        if answer != expected[path.name]:
            wrong.append(f"{path.name}: {answer!r} != {expected[path.name]!r}")
    Path(report).write_text(json.dumps([latencies, wrong, errors, time.process_time() - cpu0]))
    os._exit(0)      # a client thread left waiting on a timed-out call must not keep the process


def run_level(url: str, model_id: str, images: list[Path], expected: dict, n: int, calls: int,
              server_pid: int, work: Path) -> dict:
    import json
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    reports = [work / f"visitor-{n}-{i}.json" for i in range(n)]
    procs = [ctx.Process(target=visitor, args=(url, model_id, [str(p) for p in images], expected, calls, i,
                                               ready, go, str(reports[i]))) for i in range(n)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t0, server0 = time.perf_counter(), process_cpu(server_pid)
    go.set()
    deadline = t0 + CALL_TIMEOUT * calls + 60
    for p in procs:
        p.join(max(1.0, deadline - time.perf_counter()))
    wall = time.perf_counter() - t0
    server_cpu = process_cpu(server_pid) - server0
    latencies, wrong, errors, client_cpu = [], [], [], 0.0
    for p, report in zip(procs, reports):
        if p.is_alive():
            p.kill()
        if not report.exists():
            errors.append(f"a visitor process ended without a report (exit code {p.exitcode})")
            continue
        lat, bad, err, cpu = json.loads(report.read_text())
        latencies, wrong, errors, client_cpu = latencies + lat, wrong + bad, errors + err, client_cpu + cpu
    done = max(1, len(latencies))
    return {"n": n, "calls": len(latencies), "errors": errors, "wrong": wrong, "wall": wall,
            "server_cpu": server_cpu / done, "client_cpu": client_cpu / done,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p95": percentile(latencies, 95) if latencies else float("nan"),
            "max": max(latencies, default=float("nan")), "rate": len(latencies) / wall}


class Refresher(threading.Thread):
    """Refreshes the models table twice a second for as long as the bench runs."""

    def __init__(self, url: str, model_id: str):
        super().__init__(daemon=True)
        from gradio_client import Client

        self.client, self.model_id = Client(url, verbose=False, download_files=False), model_id
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                out = self.client.submit(None, [], api_name="/convert_refresh").result(timeout=CALL_TIMEOUT)
                if self.model_id not in str(out[0]):
                    self.failures.append(f"the models table lacks {self.model_id}")
                self.latencies.append(time.perf_counter() - t0)
            except Exception as exc:            # noqa: BLE001 - counted and shown
                self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            self.stop.wait(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, 3 calls per visitor")
    parser.add_argument("--calls", type=int, help="calls per visitor at each level (default 8; quick 3)")
    parser.add_argument("--levels", default="1,4,16", help="concurrent visitors (default 1,4,16)")
    args = parser.parse_args()
    calls = args.calls or (3 if args.quick else 8)
    levels = [int(x) for x in args.levels.split(",")]

    work = Path(tempfile.mkdtemp(prefix="imgai-space-load-"))
    os.environ.update(IMGAI_HOME=str(work / "home"), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    os.environ.pop("IMGAI_NO_DEMO", None)
    model_id, what = prepare_model(work, args.quick)
    images = photos(work / "photos")

    from imgai import jobs
    from imgai.classify.tag import TagOptions, tag
    from tests.conftest import AppServer

    truth = {Path(r.path).name: r.tags[0].label for r in tag(images, model_id=model_id, options=TagOptions(top_k=3))}
    job_id = start_training(work, epochs=100_000)
    app = AppServer(work / "home", env={"IMGAI_PUBLIC": "1"})
    refresher = None
    try:
        first = Tagger(app.url, model_id)
        expected = {p.name: first.tag(p) for p in images}     # warm-up, and the answers to hold to
        bad = {name: text for name, text in expected.items() if not text.startswith(truth[name] + " ")}
        if bad:
            raise SystemExit(f"the app's answers differ from imgai's own: {bad} vs {truth}")
        refresher = Refresher(app.url, model_id)
        refresher.start()
        stage0 = jobs.get(job_id).stage
        results = [run_level(app.url, model_id, images, expected, n, calls, app.proc.pid, work) for n in levels]
        refresher.stop.set()
        refresher.join(10)
        job = jobs.get(job_id)
    finally:
        if refresher is not None:
            refresher.stop.set()
        app.stop()
        try:
            jobs.cancel(job_id)
        except Exception:                       # noqa: BLE001 - already finished
            pass
        shutil.rmtree(work, ignore_errors=True)

    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nmachine: {os.cpu_count()} cores; load at the end: {load}")
    print(f"model: {what}; training job {job_id} {job.state} throughout ({stage0!r} → {job.stage!r})")
    print(f"photos: {', '.join(f'{k} → {v}' for k, v in truth.items())}\n")
    print(f"{'visitors':>8} {'calls':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'calls/s':>8} {'wrong':>6} "
          f"{'errors':>6} {'app CPU/call':>13} {'visitor CPU/call':>16} {'CPU floor s':>11}")
    for r in results:
        print(f"{r['n']:>8} {r['calls']:>6} {r['p50']:>7.2f} {r['p95']:>7.2f} {r['max']:>7.2f} {r['rate']:>8.2f} "
              f"{len(r['wrong']):>6} {len(r['errors']):>6} {r['server_cpu'] * 1000:>10.0f} ms "
              f"{r['client_cpu'] * 1000:>13.0f} ms {floor(r):>11.2f}")
    single = next((r["p50"] for r in results if r["n"] == 1), float("nan"))
    top = results[-1]
    ratio = top["p95"] / single
    refresh = refresher.latencies
    print(f"\nmodels table refresh during the load: {len(refresh)} answered, p50 {statistics.median(refresh):.2f} s, "
          f"p95 {percentile(refresh, 95):.2f} s, max {max(refresh):.2f} s, {len(refresher.failures)} failed")
    wrong = sum(len(r["wrong"]) + len(r["errors"]) for r in results)
    for r in results:
        for line in (r["wrong"] + r["errors"])[:3]:
            print("  !", line)
    for line in refresher.failures[:3]:
        print("  ! refresh:", line)
    ok = ratio <= TARGET and wrong == 0 and not refresher.failures and job.state == jobs.RUNNING
    print(f"\np95@{top['n']} / single call = {top['p95']:.2f} / {single:.2f} = {ratio:.2f}x (target ≤ {TARGET:.0f}x); "
          f"wrong or failed answers: {wrong}; {'PASS' if ok else 'FAIL'}")
    cores = os.cpu_count() or 1
    print(f"the cores' floor at {top['n']}: {floor(top):.2f} s = {floor(top) / single:.2f}x a single call, of which the "
          f"visitors' own CPU (which a Space's cores do not carry) is "
          f"{top['n'] * top['client_cpu'] / cores / single:.2f}x and the app's {top['n'] * top['server_cpu'] / cores / single:.2f}x; "
          f"p50 at {top['n']} is {floor(top) / top['p50']:.2f} of that floor")
    print(f"ratio={ratio:.2f} floor_ratio={floor(top) / single:.2f} app_floor_ratio={top['n'] * top['server_cpu'] / cores / single:.2f} single_s={single:.3f} p95_top_s={top['p95']:.3f} wrong={wrong} "
          f"refresh_p95_s={percentile(refresh, 95):.3f} load1={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
