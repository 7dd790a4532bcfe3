"""An FP32 ONNX classifier → INT8 with onnxruntime's quantization, measured against FP32 before it tags.

    checks (an enabled, validated FP32 ONNX classifier; calibration images readable)   ← before any job
    job: views of the calibration images → `quant_pre_process` (shape inference, graph clean-up)
         → `quantize_static` (QDQ, per-channel int8 weights, int8 activations calibrated by MinMax)
           or `quantize_dynamic` (int8 weights, activations quantized at run time)
         → validate the files → compare with FP32 on held-back views (top-1 agreement, |Δprob|, speed)
         → rename into place → registry row `<id>-int8` (type ONNX, precision int8)

imgai writes no quantizer of its own: onnxruntime does the quantization. The new model keeps the
labels and preprocessing of its original. Below MIN_INT8_AGREEMENT top-1 agreement it stays
disabled (enable it with force); nothing is registered when anything fails.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..job_context import JobContext
from .. import access, jobs, quotas, registry
from ..config import paths
from ..errors import ConfigError, ImgaiError, StateError, require
from ..log import get_logger
from . import calibration
from .convert import _replace_dir
from .labels import TAGS_FILE
from .onnx_file import external_data_files
from .preprocess import PreprocessSpec
from .validate import validate_files

METHODS = ("static", "dynamic")
JOB_KIND = "int8"
CALIBRATION_BATCH = 8
SPEED_BATCH = 8
LOG = get_logger("imgai.quantize")


@dataclass
class QuantizeOptions:
    method: str = "static"              # static: calibrated activations (QDQ); dynamic: at run time
    calibration: str | None = None      # a folder of images; None: training data, else built-in photos

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"method {self.method!r} is not one of {', '.join(METHODS)}; use static "
                              "(calibrated, fastest) or dynamic (no calibration)")

    def to_dict(self) -> dict:
        return asdict(self)


def int8_id(model_id: str) -> str:
    return f"{model_id}-int8"


def check_quantizable(model_id: str) -> registry.Model:
    """The model, if it is an enabled, validated FP32 ONNX classifier whose INT8 id is free."""
    m = registry.get(model_id)
    if not (m.type == registry.ONNX and m.valid and m.enabled and m.precision == registry.FP32
            and m.onnx_path and Path(m.onnx_path).is_file()):
        state = (f"{m.type} / {m.conversion}, {'enabled' if m.enabled else 'disabled'}, validation "
                 f"{'passed' if m.valid else 'not passed'}, precision {m.precision.upper()}")
        raise StateError(f"cannot quantize {model_id!r}: it is {state}; only an enabled, validated FP32 ONNX "
                         "classifier can be quantized (convert, validate and enable it first)")
    target = int8_id(model_id)
    if any(other.id == target for other in registry.list_models()):
        raise StateError(f"{target!r} already exists; remove it first (`imgai models remove {target}`) "
                         "to quantize again")
    return m


def submit_quantization(model_id: str, *, options: QuantizeOptions = QuantizeOptions(), actor=None) -> jobs.Job:
    """Check everything that can be checked (who asks included: imgai/access.py), then queue the
    quantization job; it and the INT8 model belong to the model's owner."""
    model = _checked(model_id, options, actor)
    images = calibration.choose(model, options.calibration)
    params = {"model_id": model_id, "target_id": int8_id(model_id), "options": options.to_dict(),
              "images": images.to_dict()}
    return jobs.submit(JOB_KIND, params, subject=model_id, owner=model.owner)


def _checked(model_id: str, options: QuantizeOptions, actor) -> registry.Model:
    model = registry.get(model_id)
    access.check(actor, "models.quantize", model)
    if options.calibration:                  # a folder on this machine
        access.check(actor, "server.paths")
    model = check_quantizable(model_id)
    quotas.ensure_room(model.owner, quotas.folder_bytes(Path(model.onnx_path).parent), what=f"quantizing {model_id}")
    return model


def quantize(model_id: str, *, options: QuantizeOptions = QuantizeOptions(), progress=None,
             event=None, actor=None) -> registry.Model:
    """Quantize in this process (what the job runs); returns the new INT8 model."""
    model = _checked(model_id, options, actor)
    images = calibration.choose(model, options.calibration)
    return _run(model, int8_id(model_id), options, images, progress or (lambda f, s=None: None),
                event or (lambda message, **kw: None))


def quantize_job(ctx: JobContext) -> dict:
    p = ctx.params
    model = check_quantizable(p["model_id"])
    new = _run(model, p["target_id"], QuantizeOptions(**p["options"]), calibration.CalibrationSet(**p["images"]),
               ctx.progress, ctx.event)
    return {"model_id": new.id, "enabled": new.enabled, "vs_fp32": new.vs_fp32,
            "quantization": new.extra["quantization"]}


def abort_job(job: jobs.Job, reason: str) -> None:
    """A job that died between the rename and the registry row leaves no orphan folder."""
    target = job.params.get("target_id")
    if target and not any(m.id == target for m in registry.list_models()):
        shutil.rmtree(paths().model_dir(target), ignore_errors=True)


# -- the work ---------------------------------------------------------------------------------

class _Reader:
    """onnxruntime's CalibrationDataReader protocol over preprocessed views, reporting progress."""

    def __init__(self, name: str, arrays: np.ndarray, batch: int, progress):
        self.name, self.arrays, self.batch, self.progress = name, arrays, batch, progress
        self.at = 0

    def get_next(self):
        if self.at >= len(self.arrays):
            return None
        chunk = self.arrays[self.at:self.at + self.batch]
        self.at += len(chunk)
        self.progress(0.25 + 0.45 * self.at / len(self.arrays))
        return {self.name: chunk}

    def rewind(self):
        self.at = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def _input_batch(onnx_path: Path) -> tuple[str, int | None]:
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    first = next(i for i in graph.input if i.name not in inits)
    dim = first.type.tensor_type.shape.dim[0]
    return first.name, (dim.dim_value if dim.HasField("dim_value") else None)


def shape_only_nodes(onnx_path: Path) -> list[str]:
    """Nodes that compute shapes, not image features: none of their inputs carries the image's
    values (only what `Shape` says about it). Exporters write such float arithmetic for "same"
    padding (timm's tf_* models); quantized, its pad sizes would round wrong, so onnxruntime is
    told to leave these nodes in float."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    data = {i.name for i in graph.input if i.name not in inits}
    excluded = []
    for node in graph.node:          # ONNX keeps nodes in topological order
        if node.op_type != "Shape" and any(name in data for name in node.input):
            data.update(node.output)
        elif node.name:
            excluded.append(node.name)
    return excluded


def onnxruntime_quantize(source: Path, target: Path, *, method: str, arrays: np.ndarray | None,
                         progress, event) -> dict:
    """Write `target` from `source` with onnxruntime.quantization; returns the settings used."""
    require("onnxruntime", extra="tag")
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_dynamic, quantize_static)

    external = bool(external_data_files(source))
    prepared = target.with_name("prepared.onnx")
    try:
        with tempfile.TemporaryDirectory(dir=target.parent.parent) as scratch, contextlib.chdir(scratch):
            # (its symbolic shape inference may leave temporary files in the working folder)
            quant_pre_process(str(source.resolve()), str(prepared.resolve()), save_as_external_data=external)
    except Exception as exc:     # optional step: onnxruntime quantizes the original graph as well
        event(f"pre-processing (shape inference, optimization) skipped: {str(exc).splitlines()[0][:200]}",
              level="warning")
        prepared = source
    settings = {"method": method, "weight_type": "int8", "per_channel": True, "pre_processed": prepared != source}
    if method == "dynamic":
        quantize_dynamic(str(prepared), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         nodes_to_exclude=shape_only_nodes(prepared), use_external_data_format=external)
        return {**settings, "format": "QOperator (dynamic)", "activation_type": "uint8 at run time"}
    name, fixed = _input_batch(source)
    reader = _Reader(name, arrays, fixed or CALIBRATION_BATCH, progress)
    quantize_static(str(prepared), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=shape_only_nodes(prepared),
                    calibrate_method=CalibrationMethod.MinMax, use_external_data_format=external)
    return {**settings, "format": "QDQ", "activation_type": "uint8", "calibrate_method": "MinMax",
            "calibration_views": int(len(arrays))}


def compare(fp32_dir: Path, int8_dir: Path, arrays: np.ndarray, *, rounds: int = 5) -> dict:
    """INT8 vs FP32 on the same preprocessed views: top-1 agreement, |Δprob| (per view, the largest
    change of any label's probability), and speed (median ms per image, the two timed in turns)."""
    from .tag import Tagger

    fp32, int8 = Tagger(fp32_dir), Tagger(int8_dir)
    _, fixed = _input_batch(fp32_dir / "model.onnx")
    batch = fixed or SPEED_BATCH
    chunks = [arrays[i:i + batch] for i in range(0, len(arrays), batch)]
    p32 = np.concatenate([fp32.infer(c) for c in chunks])
    p8 = np.concatenate([int8.infer(c) for c in chunks])
    agree = p32.argmax(1) == p8.argmax(1)
    delta = np.abs(p32 - p8).max(1)
    x = chunks[0]
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for key, tagger in (("fp32", fp32), ("int8", int8)):
            t0 = time.perf_counter()
            tagger.infer(x)
            times[key].append((time.perf_counter() - t0) * 1000 / len(x))
    fp32_ms, int8_ms = float(np.median(times["fp32"])), float(np.median(times["int8"]))
    return {"views": int(len(arrays)), "top1_agreement": float(agree.mean()), "disagreements": int((~agree).sum()),
            "mean_abs_dprob": float(delta.mean()), "max_abs_dprob": float(delta.max()),
            "fp32_ms_per_image": fp32_ms, "int8_ms_per_image": int8_ms, "speedup": fp32_ms / int8_ms,
            "speed_batch": int(len(x)), "min_top1_agreement": registry.MIN_INT8_AGREEMENT,
            "meets_bar": bool(agree.mean() >= registry.MIN_INT8_AGREEMENT)}


def _run(model: registry.Model, target_id: str, options: QuantizeOptions, images: calibration.CalibrationSet,
         progress, event) -> registry.Model:
    import onnxruntime

    source_dir = Path(model.onnx_path).parent
    spec = PreprocessSpec.load(source_dir / "preprocess.json")
    staging = Path(tempfile.mkdtemp(dir=paths().tmp, prefix=f"int8-{model.id}-"))
    skipped = list(images.skipped)
    t0 = time.time()

    def skip(item, reason):
        skipped.append(f"{Path(item).name}: {reason}")
        event(f"skipped {Path(item).name}: {reason}", level="warning")

    try:
        for note in images.skipped:
            event(f"skipped {note}", level="warning")
        progress(0.02, f"reading calibration images: {images.source}")
        calib = None
        if options.method == "static":
            calib = calibration.load_views(images.calibrate, spec, per_image=calibration.CALIBRATION_VIEWS,
                                           on_skip=skip, on_image=lambda i, n: progress(0.02 + 0.13 * i / n))
            if not len(calib):
                raise ConfigError(f"none of the {len(images.calibrate)} calibration images could be read "
                                  f"({'; '.join(skipped[:3])}); give a folder of readable photos")
        held = calibration.load_views(images.held_back, spec, per_image=calibration.VALIDATION_VIEWS, on_skip=skip)
        if not len(held):
            raise ConfigError("none of the held-back images could be read, so INT8 cannot be compared with FP32; "
                              "give a folder of readable photos")
        progress(0.2, "quantizing with onnxruntime" + (f" (calibrating on {len(calib)} views)" if calib is not None else ""))
        out = staging / "onnx"
        out.mkdir()
        try:
            settings = onnxruntime_quantize(source_dir / "model.onnx", out / "model.onnx", method=options.method,
                                            arrays=calib, progress=progress, event=event)
        except ImgaiError:
            raise
        except Exception as exc:
            message = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
            raise StateError(f"onnxruntime could not quantize {model.id!r}: {type(exc).__name__}: {message}") from exc
        (out / "prepared.onnx").unlink(missing_ok=True)
        for name in ("labels.json", "preprocess.json", TAGS_FILE):     # a tagger's categories travel too
            if name != TAGS_FILE or (source_dir / name).is_file():
                shutil.copyfile(source_dir / name, out / name)
        progress(0.75, "validating the INT8 model")
        result = validate_files(out)
        if not result.passed:
            raise StateError("the INT8 model failed validation: " + "; ".join(result.problems))
        progress(0.8, f"comparing INT8 with FP32 on {len(held)} held-back views")
        figures = compare(source_dir, out, held)
        event(f"INT8 vs FP32: top-1 agreement {figures['top1_agreement']:.1%} on {figures['views']} views, "
              f"mean |Δprob| {figures['mean_abs_dprob']:.4f}, {figures['int8_ms_per_image']:.1f} vs "
              f"{figures['fp32_ms_per_image']:.1f} ms/image ({figures['speedup']:.2f}x)", data=figures)
        progress(0.95, "moving into place")
        target = paths().model_dir(target_id) / "onnx"
        _replace_dir(out, target)
        settings.update(onnxruntime=onnxruntime.__version__, calibration=images.source,
                        calibration_images=len(images.calibrate), held_back_images=len(images.held_back),
                        skipped=skipped, seconds=round(time.time() - t0, 1))
        try:
            new = registry.create(
                name=f"{model.name} (INT8)", source=f"int8 of {model.id}", architecture=model.architecture,
                library="onnx", type=registry.ONNX, conversion=registry.NOT_APPLICABLE,
                onnx_path=str(target / "model.onnx"), model_id=target_id, owner=model.owner,
                extra={"precision": registry.INT8, "quantized_from": model.id, "quantization": settings,
                       "vs_fp32": figures, "license": model.extra.get("license"),
                       "exporter": model.extra.get("exporter"), "opset": model.extra.get("opset")})
            if new.id != target_id:
                raise StateError(f"{target_id!r} was registered by someone else meanwhile; quantize again")
        except BaseException:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise
        registry.record_validation(new.id, result.to_dict())
        if figures["meets_bar"]:
            registry.set_enabled(new.id, True)
        else:
            event(f"{new.id} stays disabled: top-1 agreement {figures['top1_agreement']:.1%} is below "
                  f"{registry.MIN_INT8_AGREEMENT:.0%} (enable it with --force if that is good enough)", level="warning")
        LOG.info("quantized %s → %s (%s) in %.1fs: agreement %.3f", model.id, new.id, options.method,
                 time.time() - t0, figures["top1_agreement"])
        progress(1.0, "quantized")
        return registry.get(new.id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
