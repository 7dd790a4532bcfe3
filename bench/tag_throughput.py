"""Tagging throughput: imgai's onnxruntime session (FP32 and INT8) vs PyTorch eager and torch.compile,
on this machine, next to the machine's theoretical peaks.

ResNet-50 and MobileNetV3-Large with random (BN-calibrated) weights, batch 1 and 32, same inputs,
same thread count, timed in turns. INT8 is imgai's own quantization step (onnxruntime static QDQ,
per-channel weights, calibrated on views of real photos). The peaks come from what the machine
reports (imgai.cpu: cores, SIMD width and FMA units from the CPU flags and model, clock); the
achieved GFLOP/s count the model's multiply-adds from its graph (bench/flops.py). Then
end-to-end folder tagging (JPEG decode + preprocessing included, through imgai's Tagger) vs the
same session fed pre-decoded arrays (model only), and the demo model's (EfficientNet-Lite0, real
ImageNet weights) INT8 top-1 agreement with FP32 on held-back real photos.

    .venv/bin/python bench/tag_throughput.py [--quick]

Prints a side-by-side table; the last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

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


def quantize_int8(folder: Path, photos: list[Path]) -> Path:
    """imgai's INT8 step (onnxruntime static QDQ, per-channel) on views of real photos."""
    from imgai.classify import calibration
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.classify.quantize import quantize_file

    spec = PreprocessSpec.load(folder / "preprocess.json")
    arrays = np.concatenate(calibration.photo_views([str(p) for p in photos], spec,
                                                    per_image=calibration.CALIBRATION_VIEWS))
    target = folder.parent / f"{folder.name}-int8"
    target.mkdir(exist_ok=True)
    quantize_file(folder / "model.onnx", target / "model.onnx", method="minmax", calibration_views=arrays)
    return target


def bench_models(workdir: Path, min_time: float, photos: list[Path]) -> dict:
    import torch

    from flops import macs_per_image

    from imgai.classify.session import create_session

    torch.set_num_threads(os.cpu_count() or 1)
    out = {}
    for key, arch in MODELS.items():
        model = build(arch)
        folder = export(model, workdir / key)
        session = create_session(folder / "model.onnx")
        int8 = create_session(quantize_int8(folder, photos) / "model.onnx")
        macs = macs_per_image(folder / "model.onnx")
        name = session.get_inputs()[0].name
        compiled = torch.compile(model)
        for batch in (1, 32):
            x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                t0 = time.perf_counter()
                compiled(xt)   # compile outside the timing
                compile_s = time.perf_counter() - t0
                r = rates({"onnxruntime": lambda: session.run(None, {name: x}), "int8": lambda: int8.run(None, {name: x}),
                           "eager": lambda: model(xt), "compile": lambda: compiled(xt)}, batch, min_time=min_time)
            ort, eager, comp = r["onnxruntime"], r["eager"], r["compile"]
            out[(key, batch)] = {**r, "compile_s": compile_s, "macs": macs}
            print(f"  {key} b{batch}: ort {ort:.1f}  int8 {r['int8']:.1f}  eager {eager:.1f}  compile {comp:.1f} img/s",
                  flush=True)
    return out


def lite0_agreement(workdir: Path) -> dict:
    """The demo model through imgai's own convert and quantize (built-in calibration photos)."""
    os.environ["IMGAI_HOME"] = str(workdir / "home")
    from imgai import jobs, startup
    from imgai.classify.quantize import quantize
    from imgai.demo import MODEL_ID, preparing, restore_demo

    startup.prepare()
    job = preparing() or restore_demo()    # the demo's own job: weights → registry → ONNX → validated
    if job is not None and (job := jobs.wait(job.id, timeout=1800)).state != jobs.SUCCEEDED:
        raise SystemExit(f"preparing the demo model {job.state}: {job.error}")
    return quantize(MODEL_ID).vs_fp32


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average %.2f %.2f %.2f" % os.getloadavg()


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


def bench_end_to_end(workdir: Path, paths: list[Path], min_time: float) -> dict:
    from imgai.classify.tag import TagOptions, Tagger

    tagger = Tagger(workdir / "resnet50")
    n = len(paths)
    arrays = np.stack([tagger.decode(p) for p in paths])
    batch = 32

    def model_only():
        for i in range(0, n, batch):
            tagger.infer(arrays[i:i + batch])

    def end_to_end():
        results = list(tagger.run(paths, TagOptions(batch_size=batch)))
        assert len(results) == n and not any(r.error for r in results)

    return rates({"model_only": model_only, "end_to_end": end_to_end}, n, min_time=min_time, min_rounds=2)


def peak_table(models: dict, cpu) -> list[str]:
    """Achieved GFLOP/s (FP32) and GOP/s (INT8) next to the machine's peaks."""
    lines = [f"{'model':<14}{'batch':>6}{'FP32 GFLOP/s':>14}{'of peak':>9}{'INT8 GOP/s':>12}{'of VNNI peak':>14}"
             f"{'int8/fp32':>11}"]
    for (key, batch), r in models.items():
        fp32 = r["onnxruntime"] * 2 * r["macs"] / 1e9
        int8 = r["int8"] * 2 * r["macs"] / 1e9
        of_fp32 = f"{fp32 / cpu.peak_fp32_gflops:.2f}" if cpu.peak_fp32_gflops else "-"
        of_int8 = f"{int8 / cpu.peak_int8_gops:.2f}" if cpu.peak_int8_gops else "no VNNI"
        lines.append(f"{key:<14}{batch:>6}{fp32:>14.1f}{of_fp32:>9}{int8:>12.1f}{of_int8:>14}"
                     f"{r['int8'] / r['onnxruntime']:>10.2f}x")
    return lines


def main() -> None:
    from imgai.cpu import cpu_info

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter timings (a smoke run)")
    args = parser.parse_args()
    min_time = 2.0 if args.quick else 8.0
    cpu = cpu_info()
    before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"machine: {cpu.model}, {cpu.cores} cores, {cpu.ghz} GHz ({cpu.clock_source}), {cpu.simd_name()} "
              f"x{cpu.fma_units} FMA units, {cpu.int8_verdict}; timing ≥{min_time:.0f}s per cell (median)", flush=True)
        print(f"uptime before: {before}", flush=True)
        photos = make_photos(workdir / "photos", 128 if not args.quick else 64)
        models = bench_models(workdir, min_time, photos[:16])
        e2e = bench_end_to_end(workdir, photos, min_time)
        lite0 = lite0_agreement(workdir)
    after = uptime()

    print()
    print(f"{'model':<14}{'batch':>6}{'onnxruntime':>14}{'INT8':>9}{'eager':>10}{'compile':>10}{'ort/eager':>11}"
          f"{'ort/compile':>13}{'int8/fp32':>11}")
    for (key, batch), r in models.items():
        print(f"{key:<14}{batch:>6}{r['onnxruntime']:>14.1f}{r['int8']:>9.1f}{r['eager']:>10.1f}{r['compile']:>10.1f}"
              f"{r['onnxruntime'] / r['eager']:>10.2f}x{r['onnxruntime'] / r['compile']:>12.2f}x"
              f"{r['int8'] / r['onnxruntime']:>10.2f}x")
    print("(images per second; torch.compile time excluded: "
          + ", ".join(f"{k} b{b} {r['compile_s']:.0f}s" for (k, b), r in models.items()) + ")")
    print()
    peaks = (f"FP32 {cpu.peak_fp32_gflops:.0f} GFLOP/s" if cpu.peak_fp32_gflops else "FP32 peak unknown (no clock)")
    peaks += f", INT8 (VNNI) {cpu.peak_int8_gops:.0f} GOP/s" if cpu.peak_int8_gops else ", no VNNI: no INT8 peak"
    peaks += f", AMX-INT8 {cpu.peak_amx_gops:.0f} GOP/s" if cpu.peak_amx_gops else ""
    print(f"peaks ({cpu.cores} cores x {cpu.ghz} GHz x {cpu.fma_units} FMA x {cpu.simd_bits}-bit): {peaks}")
    for line in peak_table(models, cpu):
        print(line)
    if not cpu.vnni:
        print("this CPU has no VNNI: the INT8 ratio is only reported (the 1.7x target applies to VNNI machines)")
    print(f"\nend-to-end folder tagging (ResNet-50, b32, JPEG 640x480 decode + preprocess): "
          f"{e2e['end_to_end']:.1f} img/s vs model-only {e2e['model_only']:.1f} img/s "
          f"= {e2e['end_to_end'] / e2e['model_only']:.2f}")
    print(f"EfficientNet-Lite0 (demo, ImageNet weights) INT8 vs FP32 on {lite0['views']} views of held-back real "
          f"photos: top-1 agreement {lite0['top1_agreement']:.1%}, mean |Δprob| {lite0['mean_abs_dprob']:.4f}, "
          f"{lite0['int8_ms_per_image']:.1f} vs {lite0['fp32_ms_per_image']:.1f} ms/image")
    print(f"uptime after: {after}")
    r50 = models[("resnet50", 32)]
    figures = {
        "resnet50_b32_vs_eager": r50["onnxruntime"] / r50["eager"],
        "resnet50_b32_vs_compile": r50["onnxruntime"] / r50["compile"],
        "mobilenetv3_b1_vs_eager": models[("mobilenetv3", 1)]["onnxruntime"] / models[("mobilenetv3", 1)]["eager"],
        "e2e_vs_model": e2e["end_to_end"] / e2e["model_only"],
        "resnet50_b32_int8_vs_fp32": r50["int8"] / r50["onnxruntime"],
        "resnet50_b32_fp32_vs_peak": (r50["onnxruntime"] * 2 * r50["macs"] / 1e9 / cpu.peak_fp32_gflops
                                      if cpu.peak_fp32_gflops else float("nan")),
        "lite0_int8_top1_agreement": lite0["top1_agreement"],
    }
    print(" ".join(f"{k}={v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
