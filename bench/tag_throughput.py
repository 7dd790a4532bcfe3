"""Tagging throughput: imgai's onnxruntime session vs PyTorch eager and torch.compile, on this machine.

ResNet-50 and MobileNetV3-Large with random (BN-calibrated) weights, batch 1 and 32, same inputs,
same thread count. Then end-to-end folder tagging (JPEG decode + preprocessing included, through
imgai's Tagger) vs the same session fed pre-decoded arrays (model only).

    .venv/bin/python bench/tag_throughput.py [--quick]

Prints a side-by-side table; the last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = {"resnet50": "resnet50", "mobilenetv3": "mobilenetv3_large_100"}


def build(arch: str):
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=1000)
    for m in model.modules():   # realistic BN statistics, so activations do not vanish
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 224, 224))
    return model.eval()


def rates(fns: dict, batch: int, *, min_time: float, min_rounds: int = 3) -> dict:
    """Images per second for each callable: one warm-up each, then rounds that time every callable
    once in turn (so a load change on the machine hits all of them alike); median per callable."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    start = time.perf_counter()
    while min(len(t) for t in times.values()) < min_rounds or time.perf_counter() - start < min_time * len(fns):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: batch / float(np.median(t)) for name, t in times.items()}


def export(model, folder: Path) -> Path:
    from imgai.classify.architectures import Detected
    from imgai.classify.convert import export_onnx
    from imgai.classify.load import LoadedModel
    from imgai.classify.preprocess import PreprocessSpec

    spec = PreprocessSpec.from_timm(model.pretrained_cfg)
    loaded = LoadedModel(model, [str(i) for i in range(1000)], spec, Detected("timm", "x", "ResNet"))
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(loaded, folder)
    spec.save(folder / "preprocess.json")
    from imgai.classify.labels import write_labels

    write_labels(loaded.labels, folder / "labels.json")
    return folder


def bench_models(workdir: Path, min_time: float) -> dict:
    import torch

    from imgai.classify.session import create_session

    torch.set_num_threads(os.cpu_count() or 1)
    out = {}
    for key, arch in MODELS.items():
        model = build(arch)
        folder = export(model, workdir / key)
        session = create_session(folder / "model.onnx")
        name = session.get_inputs()[0].name
        compiled = torch.compile(model)
        for batch in (1, 32):
            x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                t0 = time.perf_counter()
                compiled(xt)   # compile outside the timing
                compile_s = time.perf_counter() - t0
                r = rates({"onnxruntime": lambda: session.run(None, {name: x}), "eager": lambda: model(xt),
                           "compile": lambda: compiled(xt)}, batch, min_time=min_time)
            ort, eager, comp = r["onnxruntime"], r["eager"], r["compile"]
            out[(key, batch)] = {**r, "compile_s": compile_s}
            print(f"  {key} b{batch}: ort {ort:.1f}  eager {eager:.1f}  compile {comp:.1f} img/s", flush=True)
    return out


def make_photos(folder: Path, n: int) -> list[Path]:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    sources = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    paths = []
    for i in range(n):
        img = Image.fromarray(sources[i % len(sources)]).resize((640, 480))
        path = folder / f"photo_{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def bench_end_to_end(workdir: Path, n: int, min_time: float) -> dict:
    from imgai.classify.tag import TagOptions, Tagger

    tagger = Tagger(workdir / "resnet50")
    paths = make_photos(workdir / "photos", n)
    arrays = np.stack([tagger.decode(p) for p in paths])
    batch = 32

    def model_only():
        for i in range(0, n, batch):
            tagger.infer(arrays[i:i + batch])

    def end_to_end():
        results = list(tagger.run(paths, TagOptions(batch_size=batch)))
        assert len(results) == n and not any(r.error for r in results)

    return rates({"model_only": model_only, "end_to_end": end_to_end}, n, min_time=min_time, min_rounds=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter timings (a smoke run)")
    args = parser.parse_args()
    min_time = 2.0 if args.quick else 8.0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"machine: {os.cpu_count()} cores; timing ≥{min_time:.0f}s per cell (median)", flush=True)
        models = bench_models(workdir, min_time)
        e2e = bench_end_to_end(workdir, 128 if not args.quick else 64, min_time)

    print()
    print(f"{'model':<14}{'batch':>6}{'onnxruntime':>14}{'eager':>10}{'compile':>10}{'ort/eager':>11}{'ort/compile':>13}")
    for (key, batch), r in models.items():
        print(f"{key:<14}{batch:>6}{r['onnxruntime']:>14.1f}{r['eager']:>10.1f}{r['compile']:>10.1f}"
              f"{r['onnxruntime'] / r['eager']:>10.2f}x{r['onnxruntime'] / r['compile']:>12.2f}x")
    print("(images per second; torch.compile time excluded: "
          + ", ".join(f"{k} b{b} {r['compile_s']:.0f}s" for (k, b), r in models.items()) + ")")
    print(f"\nend-to-end folder tagging (ResNet-50, b32, JPEG 640x480 decode + preprocess): "
          f"{e2e['end_to_end']:.1f} img/s vs model-only {e2e['model_only']:.1f} img/s "
          f"= {e2e['end_to_end'] / e2e['model_only']:.2f}")
    figures = {
        "resnet50_b32_vs_eager": models[("resnet50", 32)]["onnxruntime"] / models[("resnet50", 32)]["eager"],
        "resnet50_b32_vs_compile": models[("resnet50", 32)]["onnxruntime"] / models[("resnet50", 32)]["compile"],
        "mobilenetv3_b1_vs_eager": models[("mobilenetv3", 1)]["onnxruntime"] / models[("mobilenetv3", 1)]["eager"],
        "e2e_vs_model": e2e["end_to_end"] / e2e["model_only"],
    }
    print(" ".join(f"{k}={v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
