"""Tagging a folder on Ray vs the local engine, on the same cores, in one run.

The same folder (2,048 JPEG photos, 640x480, by default) and the same model (ResNet-50 with
random, BN-calibrated weights, 1,000 labels, batch 32) tagged three ways, each in its own
process so that its peak memory is its own:

- local:   the local engine (a decode thread pool feeding one onnxruntime session);
- ray:     `--engine ray` as a user runs it: a private local Ray started for the job
           (ray.init included in the time), Ray Data decode tasks, one onnxruntime actor;
- cluster: a simulated two-node cluster on this machine (two Ray nodes with half the cores
           each, already running), joined with --address as on a real cluster.

Each Ray figure also has its "warm" rate: the same job run again in the same Ray session (as
on a cluster that is already up), which leaves out ray.init and worker start-up. Peak memory is
the largest sum of PSS over the process and all its children (Ray's processes included).
The answers are checked: top-k labels identical and scores within 1e-6 for every image.

    .venv/bin/python bench/tag_ray.py [--quick] [--images N]

Prints a side-by-side table; the last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ENGINES = ("local", "ray", "cluster")


# -- set-up (parent) ----------------------------------------------------------------------

def prepare(workdir: Path, arch: str, n: int) -> tuple[Path, Path]:
    from tag_throughput import MODELS, build, export, make_photos

    model = export(build(MODELS[arch]), workdir / arch)
    make_photos(workdir / "photos", n)
    return model, workdir / "photos"


def tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def tree_pss(pid: int) -> int:
    """PSS of a process and all its descendants, in bytes (shared pages counted once)."""
    total = 0
    for p in tree(pid):
        try:
            total += p.memory_full_info().pss
        except Exception:   # gone, or not ours to read
            pass
    return total


class CpuClock:
    """CPU seconds used by this process and its descendants (Ray's processes) between calls."""

    def __init__(self):
        self.seen: dict[int, float] = {}

    def __call__(self) -> float:
        used = 0.0
        for p in tree(os.getpid()):
            try:
                t = p.cpu_times()
            except Exception:
                continue
            now = t.user + t.system + (t.children_user + t.children_system if p.pid == os.getpid() else 0)
            used += now - self.seen.get(p.pid, 0.0)
            self.seen[p.pid] = now
        return used


def measure(engine: str, model: Path, photos: Path, batch: int) -> dict:
    """Run one engine in a child process; sample its process tree's memory while it runs."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        cmd = [sys.executable, __file__, "--run", engine, "--model-dir", str(model), "--photos", str(photos),
               "--batch", str(batch), "--result", out.name]
        child = subprocess.Popen(cmd, cwd=ROOT)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_pss(child.pid))
            time.sleep(0.25)
        if child.returncode:
            raise SystemExit(f"{engine} run failed with exit code {child.returncode}")
        result = json.loads(Path(out.name).read_text())
    result["peak_mib"] = peak / 2**20
    return result


# -- one engine (child) ---------------------------------------------------------------------

def answers(results) -> dict:
    return {r.path: ([t.label for t in r.tags], [t.score for t in r.tags], r.error) for r in results}


def run_local(model: Path, files: list[str], options) -> dict:
    from imgai.classify.tag import Tagger

    cpu = CpuClock()
    cpu()
    t0 = time.perf_counter()
    results = list(Tagger(model).run(files, options))
    return {"seconds": time.perf_counter() - t0, "cpu_s": cpu(), "answers": answers(results)}


def run_ray(model: Path, files: list[str], options, *, address: str | None = None) -> dict:
    """The job as `imgai tag --engine ray` runs it, then once more in the same Ray session."""
    from imgai.engines.ray_session import ray_session
    from imgai.engines.ray_tag import tag_rows

    cpu = CpuClock()
    cpu()
    t0 = time.perf_counter()
    with ray_session(address) as session:
        first = [r for r, _ in tag_rows(files, folder=model, options=options)]
        cold, cold_cpu = time.perf_counter() - t0, cpu()
        t1 = time.perf_counter()
        warm_results = [r for r, _ in tag_rows(files, folder=model, options=options)]
        warm, warm_cpu = time.perf_counter() - t1, cpu()
        nodes = len(session["nodes"])
    return {"seconds": cold, "cpu_s": cold_cpu, "warm_seconds": warm, "warm_cpu_s": warm_cpu, "nodes": nodes,
            "answers": answers(first), "warm_same": answers(warm_results) == answers(first)}


def run_cluster(model: Path, files: list[str], options) -> dict:
    from ray.cluster_utils import Cluster

    from imgai.engines.ray_session import quiet_environment, token_auth_environment

    quiet_environment()
    token_auth_environment(private=True)
    half = max(1, (os.cpu_count() or 2) // 2)
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": half, "include_dashboard": False,
                                                          "object_store_memory": 1 << 30})
    try:
        nodes.add_node(num_cpus=half, object_store_memory=1 << 30)
        nodes.wait_for_nodes()
        return run_ray(model, files, options, address=nodes.address)
    finally:
        nodes.shutdown()


def child(args) -> None:
    from imgai.classify.tag import TagOptions, collect_images

    files = [str(p) for p in collect_images([args.photos])]
    options = TagOptions(batch_size=args.batch)
    run = {"local": run_local, "ray": run_ray, "cluster": run_cluster}[args.run]
    result = run(Path(args.model_dir), files, options)
    result["images"] = len(files)
    Path(args.result).write_text(json.dumps(result))


# -- report ---------------------------------------------------------------------------------------

def same_answers(a: dict, b: dict) -> bool:
    if sorted(a) != sorted(b):
        return False
    for path, (labels, scores, error) in a.items():
        other = b[path]
        if (other[0], other[2]) != (labels, error):
            return False
        if any(abs(x - y) > 1e-6 + 1e-12 for x, y in zip(scores, other[1])):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256 images and MobileNetV3 (a smoke run)")
    parser.add_argument("--images", type=int, help="how many photos (default 2048; 256 with --quick)")
    parser.add_argument("--model", choices=("resnet50", "mobilenetv3"), help="default resnet50 (mobilenetv3 with --quick)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of local,ray,cluster")
    parser.add_argument("--run", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--photos", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return child(args)

    n = args.images or (256 if args.quick else 2048)
    arch = args.model or ("mobilenetv3" if args.quick else "resnet50")
    engines = [e for e in args.engines.split(",") if e]
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f}; {n} photos 640x480, {arch}, batch {args.batch}",
          flush=True)
    if load > (os.cpu_count() or 1) * 0.5:
        print("warning: the machine is busy; throughput figures are not trustworthy", flush=True)
    with tempfile.TemporaryDirectory(prefix="imgai-bench-") as tmp:
        model, photos = prepare(Path(tmp), arch, n)
        results = {}
        for engine in engines:
            print(f"  {engine} …", flush=True)
            results[engine] = measure(engine, model, photos, args.batch)

    report(results, load)


def fmt(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def report(results: dict, load: float) -> None:
    base = results.get("local")
    local_rate = base["images"] / base["seconds"] if base else None
    print()
    print(f"{'engine':<9}{'nodes':>6}{'img/s':>8}{'vs local':>10}{'warm img/s':>12}{'warm vs local':>15}"
          f"{'CPU ms/img':>12}{'warm CPU':>10}{'peak MiB':>10}{'same answers':>14}")
    figures = {}
    for engine, r in results.items():
        n = r["images"]
        rate = n / r["seconds"]
        warm = n / r["warm_seconds"] if "warm_seconds" in r else None
        ratio = rate / local_rate if local_rate else None
        warm_ratio = warm / local_rate if (warm and local_rate) else None
        warm_cpu = 1000 * r["warm_cpu_s"] / n if "warm_cpu_s" in r else None
        same = (same_answers(r["answers"], base["answers"]) and r.get("warm_same", True)) if base else None
        print(f"{engine:<9}{r.get('nodes', 1):>6}{rate:>8.1f}{fmt(ratio, '.2f', 'x'):>10}{fmt(warm, '.1f'):>12}"
              f"{fmt(warm_ratio, '.2f', 'x'):>15}{1000 * r['cpu_s'] / n:>12.1f}{fmt(warm_cpu, '.1f'):>10}"
              f"{r['peak_mib']:>10.0f}{'-' if same is None else ('yes' if same else 'NO'):>14}")
        figures[f"{engine}_img_s"] = rate
        figures[f"{engine}_peak_mib"] = r["peak_mib"]
        if engine != "local" and base:
            figures[f"{engine}_vs_local"] = ratio
            figures[f"{engine}_warm_vs_local"] = warm_ratio
            figures[f"{engine}_same_answers"] = int(bool(same))
    print("(img/s over the whole job: model load, and for Ray its ray.init and actor start-up, included; "
          "warm = the same job again in the same Ray session; CPU = all processes of the run, Ray's included: "
          "load on the machine disturbs it far less than img/s)")
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
          + f" load={load:.1f}")

if __name__ == "__main__":
    main()
