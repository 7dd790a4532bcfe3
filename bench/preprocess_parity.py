"""Preprocessing parity per family: imgai's spec (read from the family's own files) next to the
family's own library, on real photos (scikit-image), in one run.

    .venv/bin/python bench/preprocess_parity.py

Three tables, the cases of tests/preprocess_factories.py (the test asserts ≤ 1e-4 on each):
transformers image processors at their real sizes (max |Δ| of the pixel tensors, and for the
Fast ones the same spec resized with PIL instead, to show why the backend matters); tiny
random classifiers in the Hub's format (max |Δscore| vs transformers' pipeline); timm's
pretrained_cfgs (max |Δ| vs resolve_data_config + create_transform) and tiny timm models' scores.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    warnings.simplefilter("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    from imgai.classify.load import read_json
    from imgai.classify.preprocess import PreprocessSpec, decode_image
    from tests import preprocess_factories as pf

    started = time.perf_counter()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = pf.photo_paths(tmp / "photos")
        sizes = {name: decode_image(path).size for name, path in photos.items()}
        print("photos: " + ", ".join(f"{name} ({w}x{h})" for name, (w, h) in sizes.items()))

        print(f"\n{'transformers processor':<32}{'resize':>8}{'max |Δ| tensor':>16}{'with PIL resize':>17}")
        for name in [*pf.PROCESSORS, "ViT (legacy feature extractor)"]:
            folder = pf.processor_folder(name, tmp / "p" / name.replace(" ", "_"))
            delta = max(pf.processor_delta(folder, p) for p in photos.values())
            spec = PreprocessSpec.from_transformers(read_json(folder / "preprocessor_config.json"))
            alt = "-"
            if spec.resize_backend == "torch":
                from transformers import AutoImageProcessor

                pil = dataclasses.replace(spec, resize_backend="pil")
                processor = AutoImageProcessor.from_pretrained(str(folder))
                alt = max(float(np.abs(pil(decode_image(p)) - processor(images=decode_image(p), return_tensors="pt")
                                       ["pixel_values"][0].numpy()).max()) for p in photos.values())
                alt = f"{alt:.2e}"
            worst = max(worst, delta)
            print(f"{name:<32}{spec.resize_backend:>8}{delta:>16.2e}{alt:>17}", flush=True)

        print(f"\n{'transformers model (pipeline)':<32}{'max |Δscore|':>14}{'score spread':>14}")
        for name in pf.MODELS:
            folder = pf.model_folder(name, tmp / "m" / name.replace(" ", "_"))
            pairs = [pf.model_delta(folder, p) for p in photos.values()]
            delta = max(d for d, _ in pairs)
            worst = max(worst, delta)
            print(f"{name:<32}{delta:>14.2e}{min(s for _, s in pairs):>14.2f}", flush=True)

        print(f"\n{'timm pretrained_cfg':<44}{'crop_mode':>10}{'max |Δ| tensor':>16}")
        for name in [*pf.TIMM_ARCHITECTURES, *pf.TIMM_CFGS]:
            cfg = pf.timm_cfg(name)
            delta = max(float(np.abs(a - b).max()) for a, b in (pf.timm_tensors(cfg, p) for p in photos.values()))
            worst = max(worst, delta)
            print(f"{name:<44}{cfg.get('crop_mode') or 'center':>10}{delta:>16.2e}", flush=True)
        print(f"\n{'timm model (tiny, random)':<32}{'max |Δscore|':>14}{'score spread':>14}")
        for key in pf.TIMM_MODELS:
            pairs = [pf.timm_model_delta(key, p) for p in photos.values()]
            delta = max(d for d, _ in pairs)
            worst = max(worst, delta)
            print(f"{key:<32}{delta:>14.2e}{min(s for _, s in pairs):>14.2f}", flush=True)
    print(f"\nworst max |Δ| over every case: {worst:.2e} (tolerance 1e-4); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
