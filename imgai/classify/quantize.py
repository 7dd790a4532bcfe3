"""An FP32 ONNX classifier → INT8 with onnxruntime's quantization, searched until it keeps its answers.

    checks (an enabled, validated FP32 ONNX classifier; enough usable calibration photos)   ← before any job
    job: views of the photos → `quant_pre_process` (shape inference, graph clean-up) once
         → the accuracy-aware search (imgai/classify/int8_search.py; every static attempt's biases
           corrected for its 8-bit weights' mean shift, bias_correction.py): calibration methods, then the
           nodes that hurt kept in FP32, each attempt judged k-fold on the photos against FP32
           (top-1 agreement with its 95 % lower bound, mean/max |Δprob|, speed), within a time budget
         → the chosen recipe calibrated on every photo → validate the files
         → rename into place → registry row `<id>-int8` (type ONNX, precision int8)

On an x86 CPU with AVX2 but no VNNI, onnxruntime's fused uint8 × int8 kernels add product pairs
in int16 and saturate; there the weights of the layers that run as matrix products (int8_search.
matrix_weights) are cut to 7 bits (fast), and the search also tries them as uint8 (U8U8 kernels that
do not saturate, slower); the chosen setting is recorded as `seven_bit_weights` or `uint8_weights`,
the number of such weights.

imgai writes no quantizer of its own: onnxruntime does the quantization. The new model keeps the
labels and preprocessing of its original. It is enabled only when it meets the gate (registry.
int8_gate_problems: agreement and mean |Δprob|) and is faster than FP32 by --min-speedup; `force`
enables it anyway. Nothing is registered when anything fails.
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
from . import calibration, int8_quantizer, int8_search
from .convert import _replace_dir
from .labels import TAGS_FILE
from .onnx_file import external_data_files
from .preprocess import PreprocessSpec
from .quantize_scope import quant_plan, scope_text
from .validate import validate_files

METHODS = int8_search.QUANTIZE_METHODS
JOB_KIND = "int8"
CALIBRATION_BATCH = 8
SPEED_BATCH = 8
LOG = get_logger("imgai.quantize")


@dataclass
class QuantizeOptions:
    method: str = "auto"                # auto: int8_quantizer.AUTO_METHODS (QDQ), the best kept; minmax,
                                        # percentile, entropy: that one; dynamic: activations at run time
    calibration: str | None = None      # a folder of images; None: training data, else built-in photos
    budget: float = int8_search.DEFAULT_BUDGET_S           # seconds the search may take
    min_speedup: float = int8_search.DEFAULT_MIN_SPEEDUP   # slower than this vs FP32: not enabled
    force: bool = False                 # enable the copy even when it misses the gate or the speed-up
    op_types: list[str] | None = None   # op types to quantize (None: onnxruntime's default set)

    def __post_init__(self):
        if self.method == "static":     # the name before the search: static calibration, now searched
            self.method = "auto"
        if self.method not in METHODS:
            raise ConfigError(f"method {self.method!r} is not one of {', '.join(METHODS)}; use auto (tries "
                              "every calibration method), one of them, or dynamic (no calibration)")
        if not (self.budget > 0):
            raise ConfigError(f"budget {self.budget!r} must be a number of seconds above 0 (e.g. 300)")
        if not (self.min_speedup > 0):
            raise ConfigError(f"min_speedup {self.min_speedup!r} must be above 0 (e.g. 1.1 for 10% faster than FP32)")

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


def submit_quantization(model_id: str, *, options: QuantizeOptions = QuantizeOptions(), actor=None,
                        uploads: list | None = None) -> jobs.Job:
    """Check everything that can be checked (who asks included: imgai/access.py), then queue the
    quantization job; it and the INT8 model belong to the model's owner. `uploads`: photos a
    visitor uploaded for calibration (imgai copies them; no server folder is named)."""
    model = _checked(model_id, options, actor)
    if uploads:
        if options.calibration:
            raise ConfigError("give a calibration folder or uploaded photos, not both")
        images = calibration.from_uploads(uploads, into=paths().tmp)
    else:
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



def matrix_weights(prepared: Path) -> list[str]:
    """On a CPU whose uint8 × int8 products saturate (x86 AVX2 without VNNI), the weights of the
    layers that run as 8-bit matrix products (7 bits or uint8, as the recipe says); none elsewhere."""
    import onnx

    if not int8_quantizer.saturating_cpu():
        return []
    return int8_quantizer.matrix_weights(onnx.load(str(prepared), load_external_data=False).graph)


def prepare_graph(source: Path, prepared: Path, event) -> Path:
    """onnxruntime's `quant_pre_process` (shape inference, graph clean-up) once before any attempt;
    the original graph when it fails (the step is optional)."""
    require("onnxruntime", extra="tag")
    from onnxruntime.quantization import quant_pre_process

    try:
        with tempfile.TemporaryDirectory(dir=prepared.parent) as scratch, contextlib.chdir(scratch):
            # (its symbolic shape inference may leave temporary files in the working folder)
            quant_pre_process(str(source.resolve()), str(prepared.resolve()),
                              save_as_external_data=bool(external_data_files(source)))
        return prepared
    except Exception as exc:
        event(f"pre-processing (shape inference, optimization) skipped: {str(exc).splitlines()[0][:200]}",
              level="warning")
        return source


def quantize_file(source: Path, target: Path, *, method: str, calibration_views: np.ndarray | None,
                  keep_fp32: tuple[str, ...] = (), weights: str = "int8", event=None) -> Path:
    """`target` from `source` with one recipe and no search (benchmarks, scripts); `weights`: int8 or
    uint8 for the matrix-product layers on a CPU whose uint8 × int8 products saturate (Recipe.weights)."""
    event = event or (lambda message, **kw: None)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        prepared = prepare_graph(source, Path(scratch) / "prepared.onnx", event)
        name, fixed = _input_batch(source)
        plan = quant_plan(prepared, method=method, shape_only=shape_only_nodes(prepared))
        quantizer = int8_quantizer.Quantizer(prepared, Path(scratch), input_name=name, batch=fixed or CALIBRATION_BATCH,
                                             excluded_always=plan.excluded, op_types=plan.op_types)
        quantizer.external = bool(external_data_files(source))
        quantizer.matrix_weights = matrix_weights(prepared)
        return quantizer.write(int8_quantizer.Recipe(method, tuple(keep_fp32), weights), target, calibration_views, cache_key="x")


def _usable_views(model: registry.Model, images: calibration.CalibrationSet, spec: PreprocessSpec, skip,
                  progress) -> list[np.ndarray]:
    photos = images.photos
    if len(photos) > int8_search.MAX_SEARCH_PHOTOS:          # evenly sampled
        step = len(photos) / int8_search.MAX_SEARCH_PHOTOS
        photos = [photos[int(i * step)] for i in range(int8_search.MAX_SEARCH_PHOTOS)]
    views = calibration.photo_views(photos, spec, per_image=calibration.VALIDATION_VIEWS, on_skip=skip,
                                    on_image=lambda i, n: progress(0.02 + 0.08 * i / n))
    if len(views) < calibration.MIN_PHOTOS:
        raise ConfigError(f"only {len(views)} of the {len(photos)} calibration photos ({images.source}) could be "
                          f"read; quantizing needs at least {calibration.MIN_PHOTOS} readable photos (each is held "
                          "back once to judge INT8 against FP32 while the others calibrate); give a folder of "
                          "readable photos with --calibration")
    return views


def _vs_fp32(result: int8_search.SearchResult) -> dict:
    a = result.chosen
    return {"views": a.views, "photos": a.photos, "folds": result.folds, "top1_agreement": a.agreement,
            "agreement_lb95": a.agreement_lb, "disagreements": a.flips,
            "mean_abs_dprob": a.mean_abs_dprob, "max_abs_dprob": a.max_abs_dprob,
            "fp32_ms_per_image": a.fp32_ms_per_image, "int8_ms_per_image": a.int8_ms_per_image,
            "speedup": a.speedup, "speed_batch": result.speed_batch, "min_speedup": result.min_speedup,
            "min_top1_agreement": registry.MIN_INT8_AGREEMENT, "max_mean_abs_dprob": registry.MAX_INT8_MEAN_DPROB,
            "near_ties": a.near_ties, "near_tie_flips": a.near_tie_flips, "decisive_agreement": a.decisive_agreement(),
            "meets_bar": a.meets_gate, "enabled_by_search": result.enable, "why": result.why,
            "small_sample": result.small_sample}


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
        progress(0.02, f"reading calibration photos: {images.source}")
        views = _usable_views(model, images, spec, skip, progress)
        if images.not_yours:
            event("no calibration folder: INT8 is judged on scikit-image's bundled photos, not yours "
                  "(give --calibration FOLDER with photos like the ones you tag)", level="warning")
        name, fixed = _input_batch(source_dir / "model.onnx")
        search_dir = staging / "search"
        search_dir.mkdir()
        out = staging / "onnx"
        out.mkdir()
        start = time.monotonic()

        def on_attempt(attempt):
            event(attempt.line(), data=asdict(attempt))
            progress(min(0.85, 0.12 + 0.73 * (time.monotonic() - start) / options.budget), attempt.line())

        try:
            progress(0.1, "pre-processing the graph (onnxruntime)")
            prepared = prepare_graph(source_dir / "model.onnx", search_dir / "prepared.onnx", event)
            plan = quant_plan(prepared, method=options.method, op_types=options.op_types,
                              shape_only=shape_only_nodes(prepared))
            methods = plan.methods
            if plan.scope.transformer:
                record = plan.to_dict()
                event(f"{record['family']} graph: {scope_text(record)}", data={"scope": record})
            progress(0.12, f"searching: {', '.join(methods)} on {len(views)} photos, budget {options.budget:.0f} s")
            search = int8_search.Search(source_dir, prepared, views, search_dir, input_name=name,
                                        batch=fixed or CALIBRATION_BATCH, excluded_always=plan.excluded,
                                        calibration_views=calibration.CALIBRATION_VIEWS, op_types=plan.op_types,
                                        on_attempt=on_attempt, event=event)
            search.quantizer.external = bool(external_data_files(source_dir / "model.onnx"))
            search.quantizer.matrix_weights = matrix_weights(prepared)
            if search.quantizer.matrix_weights:
                event(f"this CPU's uint8 × int8 products can saturate (x86 AVX2 without VNNI): "
                      f"{len(search.quantizer.matrix_weights)} matrix-product weights get 7 bits, or uint8 "
                      "(U8U8 kernels, which do not saturate) where the search finds that better")
            result = int8_search.run_search(search, methods=methods, budget_s=options.budget,
                                            min_speedup=options.min_speedup)
            chosen = result.chosen.recipe()
            progress(0.87, f"chosen: attempt {result.chosen.number} ({chosen.describe()}); calibrating on every photo")
            search.quantizer.write(chosen, out / "model.onnx",
                                   None if chosen.method == "dynamic" else search.calibration(range(len(views))),
                                   cache_key=int8_quantizer.ALL_PHOTOS)
        except ImgaiError:
            raise
        except Exception as exc:
            message = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
            raise StateError(f"onnxruntime could not quantize {model.id!r}: {type(exc).__name__}: {message}") from exc
        for name in ("labels.json", "preprocess.json", TAGS_FILE):     # a tagger's categories travel too
            if name != TAGS_FILE or (source_dir / name).is_file():
                shutil.copyfile(source_dir / name, out / name)
        progress(0.9, "validating the INT8 model")
        validation = validate_files(out)
        if not validation.passed:
            raise StateError("the INT8 model failed validation: " + "; ".join(validation.problems))
        figures = _vs_fp32(result)
        event(f"chosen: {result.why}", data={"chosen": result.chosen.number})
        if result.small_sample:
            event(result.small_sample, level="warning")
        progress(0.95, "moving into place")
        target = paths().model_dir(target_id) / "onnx"
        _replace_dir(out, target)
        static = chosen.method != "dynamic"
        settings = {"method": chosen.method, "format": "QDQ" if static else "QOperator (dynamic)",
                    "weight_type": "int8", "per_channel": True,
                    "seven_bit_weights": len(search.quantizer.matrix_weights) if static and chosen.weights == "int8" else 0,
                    "uint8_weights": len(search.quantizer.matrix_weights) if static and chosen.weights == "uint8" else 0,
                    "bias_corrected": search.quantizer.bias_corrected,
                    "float_output_ops": search.quantizer.float_output_ops if static else [],
                    "activation_type": "uint8" if static else "uint8 at run time",
                    "calibrate_method": int8_quantizer.CALIBRATION_METHODS[chosen.method][0] if static else None,
                    "keep_fp32": list(chosen.keep_fp32), "scope": plan.to_dict(),
                    "pre_processed": prepared != source_dir / "model.onnx",
                    "onnxruntime": onnxruntime.__version__, "calibration": images.source,
                    "calibration_not_yours": images.not_yours, "photos": len(views),
                    "views_per_photo": calibration.VALIDATION_VIEWS, "skipped": skipped,
                    "search": result.to_dict(), "seconds": round(time.time() - t0, 1)}
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
        registry.record_validation(new.id, validation.to_dict())
        if result.enable or options.force:
            registry.set_enabled(new.id, True, force=True)
            if not result.enable:
                event(f"{new.id} enabled by force although {result.why}", level="warning")
        else:
            event(f"{new.id} stays disabled: {result.why}", level="warning")
        LOG.info("quantized %s → %s (%s) in %.1fs: %s", model.id, new.id, chosen.describe(), time.time() - t0,
                 result.why)
        progress(1.0, "quantized")
        return registry.get(new.id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if images.uploaded:
            shutil.rmtree(images.uploaded, ignore_errors=True)
