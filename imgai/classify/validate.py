"""Validate a converted (or ready-made) ONNX classifier.

Checks: full `onnx.checker`, an onnxruntime session loads, the output size equals the number of
labels, and — when the PyTorch original is at hand — ONNX vs PyTorch logits on fixed inputs:
max |difference| ≤ 1e-4 (relative to the logits' scale when that is above 1) and the same top-1.
A failed check fails; it never just warns.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import access, registry
from ..access import Actor
from ..errors import ImgaiError, StateError
from ..log import get_logger
from .labels import read_labels
from .onnx_file import check_onnx_file
from .onnx_graph import contradictions, read_graph
from .preprocess import PreprocessSpec

TOLERANCE = 1e-4
FIXED_BATCH = 2


@dataclass
class ValidationResult:
    passed: bool
    problems: list[str] = field(default_factory=list)
    num_labels: int | None = None
    output_size: int | None = None
    max_abs_diff: float | None = None
    top1_agreement: float | None = None
    ms_per_image: float | None = None
    compared_with_pytorch: bool = False
    checked_at: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not self.passed:
            return "failed: " + "; ".join(self.problems)
        parts = ["passed"]
        if self.compared_with_pytorch:
            parts.append(f"max|Δlogit| {self.max_abs_diff:.1e}, top-1 {self.top1_agreement:.0%}")
        if self.ms_per_image is not None:
            parts.append(f"{self.ms_per_image:.1f} ms/img")
        return ", ".join(parts)


def fixed_inputs(spec: PreprocessSpec) -> np.ndarray:
    h, w = spec.input_size
    shape = (FIXED_BATCH, 3, h, w) if spec.layout == "NCHW" else (FIXED_BATCH, h, w, 3)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def validate_files(onnx_dir: Path, *, reference=None) -> ValidationResult:
    """Validate `model.onnx` + `labels.json` + `preprocess.json` in `onnx_dir`. `reference` is a
    LoadedModel (PyTorch) to compare logits with, or None for a ready-made ONNX model."""
    from .session import create_session, run_logits

    onnx_dir = Path(onnx_dir)
    result = ValidationResult(passed=False, checked_at=time.time())
    try:
        check_onnx_file(onnx_dir / "model.onnx")
        graph = read_graph(onnx_dir / "model.onnx")
        labels = read_labels(onnx_dir / "labels.json")
        spec = PreprocessSpec.load(onnx_dir / "preprocess.json")
        result.num_labels = len(labels)
        mismatch = contradictions(spec, graph)
        if mismatch:
            result.problems.append("preprocess.json contradicts the ONNX graph: " + "; ".join(mismatch))
            return result
        session = create_session(onnx_dir / "model.onnx")
        x = fixed_inputs(spec)
        t0 = time.perf_counter()
        logits = run_logits(session, x.astype(graph.dtype))
        result.ms_per_image = (time.perf_counter() - t0) * 1000 / len(x)
    except ImgaiError as exc:
        result.problems.append(str(exc))
        return result
    except Exception as exc:  # onnxruntime refuses the graph, wrong input rank, …
        result.problems.append(f"onnxruntime cannot run the model: {str(exc).splitlines()[0][:300]}")
        return result
    result.output_size = int(logits.shape[-1]) if logits.ndim == 2 else None
    if logits.ndim != 2 or logits.shape[0] != len(x):
        result.problems.append(f"output shape {list(logits.shape)} is not (batch, classes)")
    elif result.output_size != len(labels):
        result.problems.append(f"the model outputs {result.output_size} scores but labels.json has "
                               f"{len(labels)} labels")
    if not np.all(np.isfinite(logits)):
        result.problems.append("the model outputs NaN or infinite scores")
    if reference is not None and not result.problems:
        import torch

        with torch.no_grad():
            expected = reference.module(torch.from_numpy(x)).numpy()
        scale = max(1.0, float(np.abs(expected).max()))
        result.compared_with_pytorch = True
        result.max_abs_diff = float(np.abs(expected - logits).max())
        ref_top, got_top = expected.argmax(-1), logits.argmax(-1)
        # A near-tie in the reference (margin within tolerance) is not a disagreement.
        sorted_ref = np.sort(expected, -1)
        clear = (sorted_ref[:, -1] - sorted_ref[:, -2]) > 2 * TOLERANCE * scale
        agree = (ref_top == got_top) | ~clear
        result.top1_agreement = float(agree.mean())
        if result.max_abs_diff > TOLERANCE * scale:
            result.problems.append(f"ONNX and PyTorch logits differ by {result.max_abs_diff:.2e} "
                                   f"(allowed {TOLERANCE * scale:.1e})")
        if not agree.all():
            result.problems.append(f"top-1 differs from PyTorch on {int((~agree).sum())} of {len(agree)} inputs")
    result.passed = not result.problems
    return result


def validate(model_id: str, *, actor: Actor | None = None) -> ValidationResult:
    """Validate a registered ONNX model and record the result (`imgai models validate`)."""
    model = registry.get(model_id)
    access.check(actor, "models.validate", model)
    if model.type != registry.ONNX or not model.onnx_path:
        raise StateError(f"{model_id!r} is {model.type} / {model.conversion}; convert it to ONNX "
                                  "before validating")
    reference = None
    if model.library != "onnx" and model.pytorch_path and Path(model.pytorch_path).is_dir():
        from .load import load_model

        reference = load_model(Path(model.pytorch_path))
    result = validate_files(Path(model.onnx_path).parent, reference=reference)
    registry.record_validation(model_id, result.to_dict())
    get_logger("imgai.validate").info("validated %s: %s", model_id, result.summary())
    return result
