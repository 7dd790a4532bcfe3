"""PyTorch → ONNX: `model.onnx` (dynamic batch axis) + `labels.json` + `preprocess.json`.

Optimum's exporter handles transformers and timm models; plain `torch.onnx` (TorchScript
exporter) covers anything optimum has no path for. The output is validated against the
PyTorch model before it replaces anything, and is moved into place with one rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from ..job_context import JobContext
from .. import access, jobs, quotas, registry
from ..access import Actor
from ..config import paths
from ..errors import ConversionError, ImgaiError, require
from ..log import get_logger
from ..staging import move_into_place
from .labels import write_labels
from .load import LoadedModel, load_model
from .validate import validate_files

OPSET = 18
LOG = get_logger("imgai.convert")


def export_onnx(loaded: LoadedModel, out_dir: Path, *, opset: int = OPSET) -> str:
    """Write `out_dir/model.onnx`; returns the exporter used."""
    torch = require("torch")
    out_dir = Path(out_dir)
    inner = getattr(loaded.module, "inner", loaded.module)
    try:
        from optimum.exporters.onnx import onnx_export_from_model

        with tempfile.TemporaryDirectory(dir=out_dir) as tmp, torch.no_grad():
            onnx_export_from_model(inner, tmp, task="image-classification", opset=opset, do_validation=False,
                                   library_name=loaded.detected.library)
            os.replace(Path(tmp) / "model.onnx", out_dir / "model.onnx")
        return "optimum"
    except (ValueError, KeyError, NotImplementedError) as exc:
        LOG.info("optimum has no path for %s (%s); using torch.onnx", loaded.detected.architecture, exc)
    h, w = loaded.preprocess.input_size
    dummy = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        torch.onnx.export(loaded.module, (dummy,), str(out_dir / "model.onnx"), dynamo=False,
                          input_names=["pixel_values"], output_names=["logits"], opset_version=opset,
                          dynamic_axes={"pixel_values": {0: "batch_size"}, "logits": {0: "batch_size"}})
    return "torch.onnx"


def convert(model_id: str, *, progress=None, actor: Actor | None = None, job_id: str | None = None) -> registry.Model:
    """Convert a registered PyTorch model in this process (the job runs `_run`; a job that does more,
    like the demo's, passes its id)."""
    access.check(actor, "models.convert", registry.get(model_id))
    registry.start_conversion(model_id, job_id)
    return _run(model_id, progress or (lambda fraction, stage: None))


def submit_conversion(model_id: str, *, actor: Actor | None = None, dispatch: bool = True) -> jobs.Job:
    """Queue a conversion job; the model shows Converting from now on. The job belongs to the
    model's owner (None: shared work). With `dispatch=False` it waits for the next dispatch."""
    model = registry.get(model_id)
    access.check(actor, "models.convert", model)
    quotas.ensure_room(model.owner, quotas.folder_bytes(model.pytorch_path), what=f"converting {model_id}")
    return jobs.submit("convert", {"model_id": model_id}, subject=model_id, owner=model.owner, start=dispatch,
                       before_queue=lambda job_id: registry.start_conversion(model_id, job_id))


def convert_job(ctx: JobContext) -> dict:
    model = _run(ctx.params["model_id"], ctx.progress)
    return {"model_id": model.id, "onnx_path": model.onnx_path, "validation": model.validation}


def abort_job(job: jobs.Job, reason: str) -> None:
    """A conversion job died or was cancelled: the model must not stay Converting."""
    model_id = job.params["model_id"]
    if reason == "cancelled":
        registry.reset_conversion(model_id, note="conversion cancelled")
    else:
        registry.fail_conversion(model_id, reason)


def _run(model_id: str, progress) -> registry.Model:
    model = registry.get(model_id)
    staging = Path(tempfile.mkdtemp(dir=paths().tmp, prefix=f"convert-{model_id}-"))
    t0 = time.time()
    try:
        progress(0.05, "loading the PyTorch model")
        if not model.pytorch_path or not Path(model.pytorch_path).is_dir():
            raise ConversionError(f"the PyTorch files of {model_id!r} are missing ({model.pytorch_path}); "
                                  "remove the model and add it again")
        loaded = load_model(Path(model.pytorch_path))
        progress(0.25, "exporting to ONNX")
        exporter = export_onnx(loaded, staging)
        write_labels(loaded.labels, staging / "labels.json")
        loaded.preprocess.save(staging / "preprocess.json")
        progress(0.7, "validating ONNX against PyTorch")
        result = validate_files(staging, reference=loaded)
        if not result.passed:
            raise ConversionError("validation failed: " + "; ".join(result.problems))
        progress(0.95, "moving into place")
        quotas.ensure_room(model.owner, quotas.folder_bytes(staging), what=f"the ONNX model of {model_id}")
        target = paths().model_dir(model_id) / "onnx"
        _replace_dir(staging, target)
        registry.finish_conversion(model_id, target / "model.onnx", validation=result.to_dict(),
                                   extra={"exporter": exporter, "opset": OPSET, "license": loaded.license},
                                   # a first conversion (and a visitor's model) ends ready to tag
                                   enable=model.onnx_path is None or model.owner is not None, make_default=True)
        LOG.info("converted %s with %s in %.1fs: %s", model_id, exporter, time.time() - t0, result.summary())
        progress(1.0, "converted")
        return registry.get(model_id)
    except ImgaiError as exc:
        LOG.error("conversion of %s failed: %s", model_id, exc)
        registry.fail_conversion(model_id, str(exc))
        raise
    except Exception as exc:
        LOG.exception("conversion of %s failed", model_id)
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        registry.fail_conversion(model_id, message)
        raise ConversionError(f"conversion of {model_id!r} failed: {message}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_dir(new: Path, target: Path) -> None:
    """Put `new` at `target` with renames only; an old version is removed afterwards."""
    move_into_place(new, target, replace=True)
