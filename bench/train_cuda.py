"""Training on a GPU: imgai's job vs the loop a PyTorch user would write vs what the GPU can do.

Run through `python bench/train_overhead.py --device cuda [--quick]`. Same JPEGs, model, batch
size and DataLoader settings for every row; each counts training samples per second over the warm
epochs (the first epoch, with cuDNN's autotuning and imgai's cache build, is left out; the whole
run's wall time is printed too):
  * bare loop, fp32: ImageFolder + Resize/CenterCrop/ToTensor/Normalize, DataLoader with the same
    workers and prefetch, persistent workers, pinned memory, non-blocking copies, AdamW;
  * bare loop, bf16 autocast + channels_last: the same with the two usual GPU switches;
  * imgai train job (function, in this process), precision auto;
  * model-only ceiling: the same training step on one batch resident on the GPU, fp32 and
    bf16 + channels_last.
Targets: imgai ≥ 0.9× the bare loop with the same settings (bf16 + channels_last) and ≥ 0.75× the
model-only bf16 ceiling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from train_overhead import imgai_job


def _model(timm_name: str, classes: int, channels_last: bool):
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(timm_name, num_classes=classes).cuda()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def bare_loop(data: Path, *, timm_name: str, image_size: int, epochs: int, batch_size: int, workers: int,
              prefetch: int, bf16: bool) -> dict:
    import torch
    from torch.utils.data import DataLoader, random_split
    from torchvision import datasets, transforms as T

    from imgai.classify.imagenet import IMAGENET_MEAN, IMAGENET_STD

    t0 = time.perf_counter()
    tf = T.Compose([T.Resize(image_size), T.CenterCrop(image_size), T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    full = datasets.ImageFolder(str(data), transform=tf)
    n_val = round(len(full) * 0.2)
    train_set, val_set = random_split(full, [len(full) - n_val, n_val], generator=torch.Generator().manual_seed(0))
    model = _model(timm_name, len(full.classes), bf16)
    layout = torch.channels_last if bf16 else torch.preserve_format
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader_args = dict(batch_size=batch_size, num_workers=workers, pin_memory=True, persistent_workers=workers > 0,
                       **({"prefetch_factor": prefetch} if workers else {}))
    train_loader = DataLoader(train_set, shuffle=True, **loader_args)
    val_loader = DataLoader(val_set, **loader_args)
    rates = []
    for _ in range(epochs):
        model.train()
        torch.cuda.synchronize()
        start, seen = time.perf_counter(), 0
        for x, y in train_loader:
            x, y = x.cuda(non_blocking=True).to(memory_format=layout), y.cuda(non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(x)
        torch.cuda.synchronize()
        rates.append(seen / (time.perf_counter() - start))
        model.eval()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            for x, y in val_loader:
                model(x.cuda(non_blocking=True).to(memory_format=layout)).argmax(1)
    torch.cuda.synchronize()
    return {"rate": statistics.mean(rates[1:] or rates), "seconds": time.perf_counter() - t0}


def ceiling(*, timm_name: str, image_size: int, batch_size: int, bf16: bool, steps: int) -> float:
    """Samples/s of the training step alone, on one batch already on the GPU."""
    import torch

    model = _model(timm_name, 3, bf16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch_size, 3, image_size, image_size, device="cuda")
    x = x.contiguous(memory_format=torch.channels_last) if bf16 else x
    y = torch.randint(0, 3, (batch_size,), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="train_overhead.py --device cuda", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--per-class", type=int, default=400, help="images per class (3 classes; 20%% validation)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=8)
    parser.add_argument("--prefetch-factor", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="a smoke run: resnet18, 240 images, 2 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.arch, args.per_class, args.epochs = "resnet18", 80, 2
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    torch.backends.cudnn.benchmark = True
    work = Path(tempfile.mkdtemp(prefix="imgai-bench-train-cuda-"))
    os.environ["IMGAI_HOME"] = str(work / "home")
    os.environ.setdefault("IMGAI_NO_DEMO", "1")
    from imgai.train import get_architecture
    from tests.train_fixtures import make_shapes

    t0 = time.perf_counter()
    data = make_shapes(work / "shapes", per_class=args.per_class, size=args.image_size + 32, fmt="jpg")
    made = time.perf_counter() - t0
    timm_name = get_architecture(args.arch).timm_name
    common = dict(timm_name=timm_name, image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size,
                  workers=args.num_workers, prefetch=args.prefetch_factor)
    steps = 10 if args.quick else 30
    ceil = {bf16: ceiling(timm_name=timm_name, image_size=args.image_size, batch_size=args.batch_size, bf16=bf16,
                          steps=steps) for bf16 in (False, True)}
    bare = {bf16: bare_loop(data, bf16=bf16, **common) for bf16 in (False, True)}
    ours = imgai_job(data, arch=args.arch, image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size,
                     val_split=0.2, lr=1e-3, seed=0, device="cuda", precision="auto", num_workers=args.num_workers,
                     prefetch_factor=args.prefetch_factor)
    rates = [h["samples_per_s"] for h in ours["history"]]
    our_rate = statistics.mean(rates[1:] or rates)
    n_train = ours["seen"] // args.epochs
    print(f"{args.arch} ({timm_name}), {n_train} training JPEGs at {args.image_size}px (made in {made:.0f}s), "
          f"batch {args.batch_size}, {args.num_workers} workers, prefetch {args.prefetch_factor}, {args.epochs} "
          f"epochs; {torch.cuda.get_device_name()}, torch {torch.__version__}; samples/s over the warm epochs")
    print(f"imgai: precision {ours['precision']}; {ours['feed']}")
    rows = [("bare loop, fp32", bare[False]["rate"], bare[False]["seconds"]),
            ("bare loop, bf16 + channels_last", bare[True]["rate"], bare[True]["seconds"]),
            ("imgai train job (precision auto)", our_rate, ours["seconds"]),
            ("model-only ceiling, fp32", ceil[False], None),
            ("model-only ceiling, bf16 + channels_last", ceil[True], None)]
    print(f"{'':42} {'samples/s':>10} {'vs bare bf16':>13} {'vs ceiling bf16':>16} {'run s':>7}")
    for name, rate, seconds in rows:
        print(f"{name:42} {rate:10.0f} {rate / bare[True]['rate']:12.2f}x {rate / ceil[True]:15.2f}x "
              f"{'' if seconds is None else f'{seconds:7.1f}'}")
    print(f"cuda_train_vs_bare_bf16={our_rate / bare[True]['rate']:.3f} cuda_train_vs_bare_fp32="
          f"{our_rate / bare[False]['rate']:.3f} cuda_train_vs_ceiling_bf16={our_rate / ceil[True]:.3f} "
          f"imgai_samples_per_s={our_rate:.0f}")
