"""Tagging throughput: imgai's onnxruntime session (FP32 and INT8) vs PyTorch eager and torch.compile,
on this machine, next to the machine's theoretical peaks.

ResNet-50 and MobileNetV3-Large with random (BN-calibrated) weights, batch 1 and 32, same inputs,
same thread count, timed in turns; ViT-B/16 and ConvNeXt-T (random init at their real sizes) at
batch 1 and 16 against PyTorch eager (no torch.compile: its compile time on a ViT-B dwarfs a
quick run). INT8 is imgai's own quantization step (onnxruntime static QDQ, per-channel weights,
calibrated on views of real photos; for ViT-B and ConvNeXt-T also dynamic), with its top-1
agreement with FP32 on views of held-back real photos (random weights: the logits are close
together, so this is a harder test than trained weights give). The peaks come from what the machine
reports (imgai.cpu: cores, SIMD width and FMA units from the CPU flags and model, clock); the
achieved GFLOP/s count the model's multiply-adds from its graph (bench/flops.py). Then
end-to-end folder tagging (JPEG decode + preprocessing included, through imgai's Tagger) vs the
same session fed pre-decoded arrays (model only), and the demo model's (EfficientNet-Lite0, real
ImageNet weights) INT8 top-1 agreement with FP32 on held-back real photos.

    .venv/bin/python bench/tag_throughput.py [--quick] [--only vit_b16,convnext_t]

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

# key → timm architecture (bench/tag_ray.py reads it too)
MODELS = {"resnet50": "resnet50", "mobilenetv3": "mobilenetv3_large_100", "vit_b16": "vit_base_patch16_224",
          "convnext_t": "convnext_tiny"}
# key → (batch sizes (--quick: the second), also torch.compile, INT8 methods)
ROWS = {
    "resnet50": (((1, 32), (1, 32)), True, ("static",)),
    "mobilenetv3": (((1, 32), (1, 32)), True, ("static",)),
    "vit_b16": (((1, 16), (1, 8)), False, ("static", "dynamic")),
    "convnext_t": (((1, 16), (1, 8)), False, ("static", "dynamic")),
}


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


def quantize_int8(folder: Path, photos: list[Path], method: str = "static") -> Path:
    """imgai's INT8 step (onnxruntime QDQ static, per-channel, on views of real photos; or dynamic)."""
    from imgai.classify import calibration
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.classify.quantize import quantize_file

    spec = PreprocessSpec.load(folder / "preprocess.json")
    arrays = (np.concatenate(calibration.photo_views([str(p) for p in photos], spec,
                                                     per_image=calibration.CALIBRATION_VIEWS))
              if method == "static" else None)
    target = folder.parent / f"{folder.name}-int8-{method}"
    target.mkdir(exist_ok=True)
    quantize_file(folder / "model.onnx", target / "model.onnx", method="minmax" if method == "static" else method,
                  calibration_views=arrays)
    return target


def agreement(fp32, int8, views: np.ndarray) -> dict:
    """Top-1 agreement and mean |Δprob| of an INT8 session with its FP32 one on preprocessed views."""
    name = fp32.get_inputs()[0].name

    def probs(session):
        logits = np.concatenate([session.run(None, {name: views[i:i + 16]})[0] for i in range(0, len(views), 16)])
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    a, b = probs(fp32), probs(int8)
    return {"top1": float((a.argmax(1) == b.argmax(1)).mean()), "mean_abs_dprob": float(np.abs(a - b).mean()),
            "views": len(views)}


def bench_models(workdir: Path, min_time: float, photos: list[Path], keys, held_back: list[Path],
                 views_per_photo: int, *, quick: bool = False) -> tuple[dict, dict]:
    """Images per second per (model, batch), and per (model, INT8 method) the agreement with FP32
    on views of the held-back photos."""
    import torch

    from flops import macs_per_image

    from imgai.classify import calibration
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.classify.session import create_session

    torch.set_num_threads(os.cpu_count() or 1)
    out, agreements = {}, {}
    for key in keys:
        batches, with_compile, methods = ROWS[key]
        batches = batches[quick]
        model = build(MODELS[key])
        folder = export(model, workdir / key)
        session = create_session(folder / "model.onnx")
        int8s = {m: create_session(quantize_int8(folder, photos, m) / "model.onnx") for m in methods}
        views = np.concatenate(calibration.photo_views([str(p) for p in held_back],
                                                       PreprocessSpec.load(folder / "preprocess.json"),
                                                       per_image=views_per_photo))
        for m, int8 in int8s.items():
            agreements[(key, m)] = a = agreement(session, int8, views)
            print(f"  {key} INT8 {m}: top-1 agreement {a['top1']:.1%} on {a['views']} views, mean |Δprob| "
                  f"{a['mean_abs_dprob']:.5f}", flush=True)
        macs = macs_per_image(folder / "model.onnx")
        name = session.get_inputs()[0].name
        compiled = torch.compile(model) if with_compile else None
        for batch in batches:
            x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            xt = torch.from_numpy(x)
            fns = {"onnxruntime": lambda: session.run(None, {name: x}), "eager": lambda: model(xt)}
            fns.update({("int8" if m == "static" else f"int8_{m}"): (lambda s=s: s.run(None, {name: x}))
                        for m, s in int8s.items()})
            compile_s = None
            with torch.inference_mode():
                if compiled is not None:
                    t0 = time.perf_counter()
                    compiled(xt)   # compile outside the timing
                    compile_s = time.perf_counter() - t0
                    fns["compile"] = lambda: compiled(xt)
                r = rates(fns, batch, min_time=min_time)
            out[(key, batch)] = {**r, "compile_s": compile_s, "macs": macs}
            print(f"  {key} b{batch}: " + "  ".join(f"{k} {v:.1f}" for k, v in r.items()) + " img/s", flush=True)
    return out, agreements


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


def bench_one_image_start(workdir: Path, photo: Path, rounds: int) -> dict:
    """A one-image `imgai tag` as a whole process (interpreter, imports, registry, session, one photo)
    with ResNet-50: the ONNX file already checked when it was added (the fingerprint cache holds it)
    vs the same command with the cache removed first, which is what every start paid before."""
    from imgai.classify.onnx_file import CHECKED_FILE

    home = workdir / "start-home"
    env = {**os.environ, "IMGAI_HOME": str(home), "IMGAI_NO_DEMO": "1"}
    cli = [sys.executable, "-m", "imgai"]
    added = subprocess.run(cli + ["models", "add", str(workdir / "resnet50"), "--json"], env=env, check=True,
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    import json

    model_id = json.loads(added.stdout)["id"]
    subprocess.run(cli + ["models", "enable", model_id], env=env, check=True, capture_output=True)

    def run(cold: bool) -> float:
        if cold:
            (home / CHECKED_FILE).unlink(missing_ok=True)
        t0 = time.perf_counter()
        subprocess.run(cli + ["tag", str(photo), "--model", model_id, "--format", "json"], env=env, check=True,
                       capture_output=True, cwd=Path(__file__).resolve().parent.parent)
        return time.perf_counter() - t0

    run(False)                                    # warm the page cache once
    times = {"checked_every_start": [], "fingerprint_cache": []}
    for _ in range(rounds):                       # in turns, so a load change hits both alike
        times["checked_every_start"].append(run(True))
        times["fingerprint_cache"].append(run(False))
    return {name: float(np.median(t)) for name, t in times.items()}


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


def _fmt(value, spec: str, unit: str = "") -> str:
    return "-" if value is None else format(value, spec) + unit


def main() -> None:
    from imgai.classify import calibration
    from imgai.cpu import cpu_info

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter timings (a smoke run)")
    parser.add_argument("--only", help=f"comma-separated models ({', '.join(MODELS)}): only their rows, no "
                                       "end-to-end or demo measurement")
    args = parser.parse_args()
    keys = args.only.split(",") if args.only else list(MODELS)
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    min_time = 2.0 if args.quick else 8.0
    cpu = cpu_info()
    before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"machine: {cpu.model}, {cpu.cores} cores, {cpu.ghz} GHz ({cpu.clock_source}), {cpu.simd_name()} "
              f"x{cpu.fma_units} FMA units, {cpu.int8_verdict}; timing ≥{min_time:.0f}s per cell (median)", flush=True)
        print(f"uptime before: {before}", flush=True)
        photos = make_photos(workdir / "photos", 128 if not args.quick else 64)
        calibrate = photos[:8] if args.quick else photos[:16]
        views = 2 if args.quick else calibration.VALIDATION_VIEWS
        models, agreements = bench_models(workdir, min_time, calibrate, keys, photos[16:24], views, quick=args.quick)
        e2e = bench_end_to_end(workdir, photos, min_time) if "resnet50" in keys and not args.only else None
        start = (bench_one_image_start(workdir, photos[0], 3 if args.quick else 5)
                 if "resnet50" in keys and not args.only else None)
        lite0 = lite0_agreement(workdir) if not args.only else None
    after = uptime()

    print()
    print(f"{'model':<14}{'batch':>6}{'onnxruntime':>14}{'INT8':>9}{'INT8 dyn':>10}{'eager':>10}{'compile':>10}"
          f"{'ort/eager':>11}{'ort/compile':>13}{'int8/fp32':>11}")
    for (key, batch), r in models.items():
        comp = r.get("compile")
        print(f"{key:<14}{batch:>6}{r['onnxruntime']:>14.1f}{r['int8']:>9.1f}{_fmt(r.get('int8_dynamic'), '.1f'):>10}"
              f"{r['eager']:>10.1f}{_fmt(comp, '.1f'):>10}{r['onnxruntime'] / r['eager']:>10.2f}x"
              f"{_fmt(comp and r['onnxruntime'] / comp, '.2f', 'x'):>13}{r['int8'] / r['onnxruntime']:>10.2f}x")
    compiled = [(k, b, r["compile_s"]) for (k, b), r in models.items() if r["compile_s"] is not None]
    print("(images per second" + ("; torch.compile time excluded: " if compiled else "")
          + ", ".join(f"{k} b{b} {s:.0f}s" for k, b, s in compiled) + ")")
    print("\nINT8 vs FP32 on views of 8 held-back real photos (random weights):")
    print(f"{'model':<14}{'method':>9}{'top-1 agreement':>17}{'mean |Δprob|':>14}")
    for (key, method), a in agreements.items():
        print(f"{key:<14}{method:>9}{a['top1']:>16.1%}{a['mean_abs_dprob']:>14.5f}  ({a['views']} views)")
    print()
    peaks = (f"FP32 {cpu.peak_fp32_gflops:.0f} GFLOP/s" if cpu.peak_fp32_gflops else "FP32 peak unknown (no clock)")
    peaks += f", INT8 (VNNI) {cpu.peak_int8_gops:.0f} GOP/s" if cpu.peak_int8_gops else ", no VNNI: no INT8 peak"
    peaks += f", AMX-INT8 {cpu.peak_amx_gops:.0f} GOP/s" if cpu.peak_amx_gops else ""
    print(f"peaks ({cpu.cores} cores x {cpu.ghz} GHz x {cpu.fma_units} FMA x {cpu.simd_bits}-bit): {peaks}")
    for line in peak_table(models, cpu):
        print(line)
    if not cpu.vnni:
        print("this CPU has no VNNI: the INT8 ratio is only reported (the 1.7x target applies to VNNI machines)")
    if e2e:
        print(f"\nend-to-end folder tagging (ResNet-50, b32, JPEG 640x480 decode + preprocess): "
              f"{e2e['end_to_end']:.1f} img/s vs model-only {e2e['model_only']:.1f} img/s "
              f"= {e2e['end_to_end'] / e2e['model_only']:.2f}")
    if start:
        print(f"one-image `imgai tag` as a whole process (ResNet-50): {start['fingerprint_cache']:.2f} s with the "
              f"ONNX check remembered vs {start['checked_every_start']:.2f} s checking it at every start "
              f"= {start['checked_every_start'] / start['fingerprint_cache']:.2f}x")
    if lite0:
        print(f"EfficientNet-Lite0 (demo, ImageNet weights) INT8 vs FP32 on {lite0['views']} views of held-back "
              f"real photos: top-1 agreement {lite0['top1_agreement']:.1%}, mean |Δprob| "
              f"{lite0['mean_abs_dprob']:.4f}, {lite0['int8_ms_per_image']:.1f} vs {lite0['fp32_ms_per_image']:.1f} "
              "ms/image")
    print(f"uptime after: {after}")
    figures = {}
    for key in keys:
        batch = ROWS[key][0][args.quick][-1]
        big = models[(key, batch)]
        figures[f"{key}_b{batch}_vs_eager"] = big["onnxruntime"] / big["eager"]
        figures[f"{key}_b{batch}_int8_vs_fp32"] = big["int8"] / big["onnxruntime"]
        figures[f"{key}_int8_top1_agreement"] = agreements[(key, "static")]["top1"]
        figures[f"{key}_fp32_vs_peak"] = (big["onnxruntime"] * 2 * big["macs"] / 1e9 / cpu.peak_fp32_gflops
                                          if cpu.peak_fp32_gflops else float("nan"))
    if "mobilenetv3" in keys:
        figures["mobilenetv3_b1_vs_eager"] = (models[("mobilenetv3", 1)]["onnxruntime"]
                                              / models[("mobilenetv3", 1)]["eager"])
    if "resnet50" in keys:
        r50 = models[("resnet50", 32)]
        figures["resnet50_b32_vs_compile"] = r50["onnxruntime"] / r50["compile"]
    if e2e:
        figures["e2e_vs_model"] = e2e["end_to_end"] / e2e["model_only"]
    if start:
        figures["tag_start_checked_vs_cached"] = start["checked_every_start"] / start["fingerprint_cache"]
    if lite0:
        figures["lite0_int8_top1_agreement"] = lite0["top1_agreement"]
    print(" ".join(f"{k}={v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
