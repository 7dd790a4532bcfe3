"""The accuracy-aware INT8 search on three classifiers, side by side in one run.

    python bench/int8_search.py [--budget SECONDS] [--models demo,resnet50,mobilenetv3]

- demo: EfficientNet-Lite0 with real ImageNet weights (imgai's demo, built offline), judged on the
  12 scikit-image photos (astronaut, chelsea, coffee, rocket, motorcycle ×2, horse, camera, coins,
  moon, retina, hubble_deep_field) as a user's calibration folder;
- resnet50: timm ResNet-50, random init with calibrated BatchNorm statistics, 1000 classes;
- mobilenetv3: timm mobilenetv3_large_100, the same;
- vit_tiny, vit_b16 (not in the default set: slow on 2 cores): timm vit_tiny_patch16_224 and
  vit_base_patch16_224, random init, 1000 classes; a transformer graph, so the plan
  (quantize_scope.quant_plan) quantizes the weights only and tries the calibration methods, then
  dynamic. Random weights put the class scores close together: their agreement is a hard case,
  not what trained weights give; their speed-up is what the graph gives.

Each goes through imgai's own convert and `quantize` (the search with its k-fold agreement, Wilson
lower bound, mean/max |Δprob| and speed-up against FP32 at batch 8, timed in turns). Every attempt is
printed, then the choice, and a last key=value line, with the views FP32 itself nearly ties (its two
best labels within 0.02), the flips among them and the agreement on the other views: a random-init
model puts nearly every view there (its 1000 probabilities are all about 0.001), so its agreement
says little; its speed-up is what the graph gives. The machine's load is printed too: on a shared
machine the speed-ups are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TIMM_MODELS = {"resnet50": "resnet50", "mobilenetv3": "mobilenetv3_large_100", "vit_tiny": "vit_tiny_patch16_224",
               "vit_b16": "vit_base_patch16_224"}


def timm_folder(arch: str, folder: Path) -> Path:
    """A random-init timm model in the Hub's timm layout, BatchNorm statistics from random images."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=1000)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, 224, 224))
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    cfg = dict(model.pretrained_cfg)
    (folder / "config.json").write_text(json.dumps({
        "architecture": arch, "num_classes": 1000, "label_names": [f"class_{i}" for i in range(1000)],
        "pretrained_cfg": {k: cfg[k] for k in ("input_size", "interpolation", "mean", "std", "crop_pct")
                           if k in cfg}}))
    return folder


def photo_folder(folder: Path) -> Path:
    from imgai.classify import calibration

    folder.mkdir(parents=True, exist_ok=True)
    for name in calibration.BUILTIN_PHOTOS:
        calibration.open_image(calibration.BUILTIN_PREFIX + name).save(folder / f"{name}.jpg", quality=95)
    return folder


def prepare(key: str, work: Path) -> str:
    from imgai import jobs
    from imgai.classify.convert import convert
    from imgai.sources import add_model

    if key == "demo":
        from imgai import startup
        from imgai.demo import MODEL_ID, preparing, restore_demo

        startup.prepare()
        job = preparing() or restore_demo()
        if job is not None and (job := jobs.wait(job.id, timeout=1800)).state != jobs.SUCCEEDED:
            raise SystemExit(f"preparing the demo model {job.state}: {job.error}")
        return MODEL_ID
    return convert(add_model(str(timm_folder(TIMM_MODELS[key], work / key))).id).id


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--models", default="demo,resnet50,mobilenetv3")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="int8-bench-"))
    os.environ["IMGAI_HOME"] = str(work / "home")
    os.environ.pop("IMGAI_NO_DEMO", None)
    from imgai.classify.quantize import QuantizeOptions, quantize
    from imgai.presentation.models import int8_search_lines, vs_fp32_line

    photos = photo_folder(work / "photos")
    print(f"load: {os.getloadavg()}, cores {os.cpu_count()}; photos: {photos}", flush=True)
    summary = {}
    for key in args.models.split(","):
        t0 = time.time()
        model_id = prepare(key, work)
        new = quantize(model_id, options=QuantizeOptions(calibration=str(photos), budget=args.budget),
                       event=lambda message, **kw: print(f"  [{key}] {message}", flush=True))
        print(f"== {key} ({model_id}) in {time.time() - t0:.0f} s")
        for line in int8_search_lines(new):
            print("  " + line)
        print(f"  {'enabled' if new.enabled else 'NOT enabled'} — {vs_fp32_line(new.vs_fp32)}", flush=True)
        f = new.vs_fp32
        summary[key] = (f"{key}_agreement={f['top1_agreement']:.4f} {key}_lb={f['agreement_lb95']:.4f} "
                        f"{key}_mean_dprob={f['mean_abs_dprob']:.4f} {key}_speedup={f['speedup']:.2f} "
                        f"{key}_fp32_nodes={len(new.extra['quantization']['keep_fp32'])} "
                        f"{key}_near_ties={f['near_ties']} {key}_near_tie_flips={f['near_tie_flips']} "
                        f"{key}_decisive_agreement={'-' if f['decisive_agreement'] is None else format(f['decisive_agreement'], '.4f')} "
                        f"{key}_enabled={int(new.enabled)} {key}_method={new.extra['quantization']['method']}")
    print(f"load after: {os.getloadavg()}")
    print(" ".join(summary.values()))


if __name__ == "__main__":
    main()
