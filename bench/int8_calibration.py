"""k-fold MinMax calibration of the INT8 search, two ways side by side in one run, on imgai's demo model
(EfficientNet-Lite0, real ImageNet weights) and its 12 built-in photos.

    python bench/int8_calibration.py

- per fold (what quantize_static does when it calibrates each fold itself): onnxruntime's MinMax
  calibrator on the other folds' photos, once per fold, so every photo runs k-1 times;
- once each (imgai, Quantizer.calibrate_folds): the same calibrator on each fold's photos once, and
  each fold's ranges merged from the others'.
Both give the same ranges to the bit (checked here, and in tests/test_int8_search.py). Prints each
way's seconds and the ratio, then a key=value line.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imgai-bench-calib-"))
    os.environ["IMGAI_HOME"] = str(work / "home")
    os.environ.pop("IMGAI_NO_DEMO", None)

    import numpy as np
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, load_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    from bench.int8_search import prepare
    from imgai import registry
    from imgai.classify import calibration, int8_figures, int8_quantizer
    from imgai.classify.onnx_preprocess import PreprocessSpec
    from imgai.classify.quantize import CALIBRATION_BATCH, _input_batch, prepare_graph

    model = registry.get(prepare("demo", work))
    source = Path(model.onnx_path).parent
    prepared = prepare_graph(source / "model.onnx", work / "prepared.onnx", lambda *a, **k: None)
    spec = PreprocessSpec.load(source / "preprocess.json")
    views = calibration.photo_views(calibration.builtin().photos, spec, per_image=calibration.VALIDATION_VIEWS)
    name, fixed = _input_batch(source / "model.onnx")
    batch = fixed or CALIBRATION_BATCH
    folds = int8_figures.folds(len(views))
    chunks = [np.concatenate([views[i][:calibration.CALIBRATION_VIEWS] for i in fold]) for fold in folds]
    print(f"demo model, {len(views)} photos × {calibration.CALIBRATION_VIEWS} calibration views, {len(folds)} folds, "
          f"batch {batch}; load {os.getloadavg()[0]:.2f}")

    op_types = list(set(QLinearOpsRegistry) | set(QDQRegistry))
    t0 = time.perf_counter()
    per_fold = []
    for f in range(len(folds)):
        union = np.concatenate([c for g, c in enumerate(chunks) if g != f])
        calibrator = create_calibrator(prepared, op_types, augmented_model_path=str(work / "augmented.onnx"),
                                       calibrate_method=CalibrationMethod.MinMax)
        calibrator.collect_data(int8_quantizer.Batches(name, union, batch))
        per_fold.append(calibrator.compute_data())
        del calibrator
    t_per_fold = time.perf_counter() - t0

    once = work / "once"
    once.mkdir()
    t0 = time.perf_counter()
    int8_quantizer.Quantizer(prepared, once, input_name=name, batch=batch, excluded_always=[]).calibrate_folds(chunks)
    t_once = time.perf_counter() - t0

    same = all(np.array_equal(load_tensors_data(once / f"calib-minmax-f{f}.json")[t].range_value,
                              per_fold[f][t].range_value) for f in range(len(folds)) for t in per_fold[f].keys())
    print(f"per fold (every photo {len(folds) - 1}×): {t_per_fold:6.1f} s")
    print(f"once each (imgai):            {t_once:6.1f} s   {t_per_fold / t_once:.2f}× faster, same ranges: {same}")
    print(f"per_fold_s={t_per_fold:.2f} once_s={t_once:.2f} ratio={t_per_fold / t_once:.2f} same={same}")


if __name__ == "__main__":
    main()
