"""What does imgai's training job cost over the loop a PyTorch user would write by hand?

One run each, in this process, on the same model, data and settings:
  * bare PyTorch: torchvision ImageFolder + the same transforms, DataLoader, AdamW, cross-entropy,
    validation every epoch, a state_dict saved at the end;
  * imgai: the "train" job function (run as the worker runs it): data pipeline, stratified split,
    per-epoch checkpoint, progress and metric events in SQLite, timm-format save, registry update.
Both count training samples per second of wall time (data loading, validation and saving
included). The data check imgai does before queueing, and a real worker's start-up, are shown
separately. Target on a CPU: imgai ≥ 0.95× the bare loop. On a shared machine the two are run
alternately `--repeats` times and the best of each is kept, so a neighbour's burst does not decide
the result.

With `--device cuda` (bench/train_cuda.py): JPEGs, resnet50 at 224 px, batch 64, 8 workers,
prefetch 4 by default, warm-epoch samples/s of imgai (precision auto) vs the bare loop (fp32, and
bf16 autocast + channels_last) vs the model-only ceiling (the same step on a resident batch).

    python bench/train_overhead.py [--quick] [--arch resnet18] [--per-class 150] [--image-size 64] [--epochs 3]
    python bench/train_overhead.py --device cuda [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def bare_pytorch(data: Path, *, timm_name: str, image_size: int, epochs: int, batch_size: int, val_split: float,
                 lr: float, seed: int, out: Path) -> tuple[float, int]:
    """The hand-written loop. Returns (seconds, training samples seen)."""
    import timm
    import torch
    from torch.utils.data import DataLoader, random_split
    from torchvision import datasets, transforms as T

    from imgai.classify.imagenet import IMAGENET_MEAN, IMAGENET_STD

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    tf = T.Compose([T.Resize(image_size), T.CenterCrop(image_size), T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    full = datasets.ImageFolder(str(data), transform=tf)
    n_val = round(len(full) * val_split)
    train_set, val_set = random_split(full, [len(full) - n_val, n_val], generator=torch.Generator().manual_seed(seed))
    model = timm.create_model(timm_name, num_classes=len(full.classes))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    seen = 0
    for _ in range(epochs):
        model.train()
        for x, y in DataLoader(train_set, batch_size=batch_size, shuffle=True):
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(x)
        model.eval()
        correct = 0
        with torch.inference_mode():
            for x, y in DataLoader(val_set, batch_size=batch_size):
                correct += int((model(x).argmax(1) == y).sum())
    torch.save(model.state_dict(), out / "bare.pt")
    return time.perf_counter() - t0, seen


def imgai_job(data: Path, *, arch: str, image_size: int, epochs: int, batch_size: int, val_split: float,
              lr: float, seed: int, **settings) -> dict:
    """imgai's job function, run in this process as `python -m imgai.worker` runs it (`settings`:
    more TrainConfig fields, e.g. device, precision, num_workers)."""
    from imgai import db, jobs, train
    from imgai.worker import run_in_worker

    model = train.create_model(f"bench-{time.time_ns()}", architecture=arch)
    config = train.TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, image_size=image_size,
                               val_split=val_split, weight_decay=0.01, pretrained=False, **settings)
    t0 = time.perf_counter()
    job = train.start(model.id, data=data, config=config, dispatch=False)    # includes the data check
    check = time.perf_counter() - t0
    with db.transaction() as conn:
        conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (jobs.STARTING, job.id))
    previous = signal.getsignal(signal.SIGTERM)
    t0 = time.perf_counter()
    try:
        run_in_worker(job.id)
    finally:
        signal.signal(signal.SIGTERM, previous)
    seconds = time.perf_counter() - t0
    done = jobs.get(job.id)
    if done.state != jobs.SUCCEEDED:
        raise SystemExit(f"imgai job failed: {done.error}")
    return {"seconds": seconds, "check": check, "seen": done.result["train_images"] * epochs,
            "val_accuracy": done.result["val_accuracy"], "history": done.result["history"],
            "precision": done.result.get("precision"), "feed": done.result.get("feed")}


def worker_job(data: Path, *, arch: str, image_size: int, epochs: int, batch_size: int, val_split: float,
               lr: float, seed: int) -> float:
    """The same job through a real worker subprocess (start-up and imports included)."""
    from imgai import jobs, train

    model = train.create_model(f"bench-worker-{time.time_ns()}", architecture=arch)
    config = train.TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, image_size=image_size,
                               val_split=val_split, pretrained=False)
    job = train.start(model.id, data=data, config=config)
    done = jobs.wait(job.id, timeout=3600)
    if done.state != jobs.SUCCEEDED:
        raise SystemExit(f"imgai worker job failed: {done.error}")
    return done.ended_at - done.created_at


def warm_up(timm_name: str, image_size: int) -> None:
    import timm
    import torch

    model = timm.create_model(timm_name, num_classes=3)
    model(torch.zeros(2, 3, image_size, image_size)).sum().backward()


def main() -> None:
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    known, rest = device.parse_known_args()
    if known.device == "cuda":
        from train_cuda import main as cuda_main

        return cuda_main(rest)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best is kept")
    parser.add_argument("--no-worker", action="store_true", help="skip the worker-subprocess row")
    parser.add_argument("--threads", type=int, help="CPU threads for torch, here and in the worker "
                        "(default: torch's own choice; 1 is steadier on a busy shared machine)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: imgai vs bare loop vs model-only ceiling on the GPU (bench/train_cuda.py)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: less data, fewer epochs, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.per_class, args.epochs, args.repeats, args.no_worker = min(args.per_class, 60), 2, 1, True
    if args.threads:
        import torch

        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="imgai-bench-train-"))
    os.environ["IMGAI_HOME"] = str(work / "home")
    os.environ.setdefault("IMGAI_NO_DEMO", "1")
    from imgai.train import get_architecture
    from tests.train_fixtures import make_shapes

    data = make_shapes(work / "shapes", per_class=args.per_class, size=args.image_size)
    timm_name = get_architecture(args.arch).timm_name
    common = dict(image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, val_split=0.2,
                  lr=1e-3, seed=0)
    warm_up(timm_name, args.image_size)
    bare_runs, our_runs = [], []
    for _ in range(max(1, args.repeats)):
        bare_runs.append(bare_pytorch(data, timm_name=timm_name, out=work, **common))
        our_runs.append(imgai_job(data, arch=args.arch, **common))
    bare_s, bare_seen = min(bare_runs)
    ours = min(our_runs, key=lambda r: r["seconds"])
    worker_s = None if args.no_worker else worker_job(data, arch=args.arch, **common)

    import torch

    bare_rate, our_rate = bare_seen / bare_s, ours["seen"] / ours["seconds"]
    ratio = our_rate / bare_rate
    bare_times = ", ".join(f"{s:.1f}s" for s, _ in bare_runs)
    our_times = ", ".join(f"{r['seconds']:.1f}s" for r in our_runs)
    print(f"{args.arch} ({timm_name}), {3 * args.per_class} images at {args.image_size}px, {args.epochs} epochs, "
          f"batch {args.batch_size}, AdamW, CPU threads {torch.get_num_threads()}; best of {len(bare_runs)} "
          f"alternating runs (bare: {bare_times}; imgai: {our_times})")
    rows = [("bare PyTorch loop", bare_s, bare_seen, bare_rate, "1.00×"),
            ("imgai train job (function)", ours["seconds"], ours["seen"], our_rate, f"{ratio:.2f}×")]
    if worker_s is not None:
        rows.append(("imgai job via worker process", worker_s, ours["seen"], ours["seen"] / worker_s,
                     f"{ours['seen'] / worker_s / bare_rate:.2f}×"))
    print(f"{'':32} {'seconds':>8} {'samples':>8} {'samples/s':>10} {'vs bare':>8}")
    for name, s, n, rate, rel in rows:
        print(f"{name:32} {s:8.2f} {n:8d} {rate:10.1f} {rel:>8}")
    print(f"(before queueing, imgai's data check took {ours['check']:.2f}s; "
          f"imgai validation accuracy {ours['val_accuracy']:.1%})")
    print(f"train_overhead_ratio={ratio:.3f} imgai_samples_per_s={our_rate:.1f} bare_samples_per_s={bare_rate:.1f}")


if __name__ == "__main__":
    main()
