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


# Above this a graph is written as model.onnx + model.onnx_data (ONNX external data): protobuf
# cannot hold a file over 2 GB. A parameter so tests can lower it instead of building 2 GB models.
EXTERNAL_DATA_LIMIT = 2 * 1000**3
EXTERNAL_DATA_NAME = "model.onnx_data"


def export_onnx(loaded: LoadedModel, out_dir: Path, *, opset: int = OPSET,
                external_data_limit: int | None = None) -> str:
    """Write `out_dir/model.onnx` (plus `model.onnx_data` when the graph is larger than
    `external_data_limit`, default EXTERNAL_DATA_LIMIT); returns the exporter used."""
    torch = require("torch")
    out_dir = Path(out_dir)
    inner = getattr(loaded.module, "inner", loaded.module)
    h, w = loaded.preprocess.input_size
    limit = EXTERNAL_DATA_LIMIT if external_data_limit is None else external_data_limit
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        exported = Path(tmp) / "model.onnx"
        exporter = "optimum"
        try:
            from optimum.exporters.onnx import onnx_export_from_model

            if loaded.detected.library == "timm":     # optimum sizes its dummy input from pretrained_cfg
                inner.pretrained_cfg = {**(getattr(inner, "pretrained_cfg", None) or {}), "input_size": (3, h, w)}
            with torch.no_grad():
                onnx_export_from_model(inner, tmp, task="image-classification", opset=opset, do_validation=False,
                                       library_name=loaded.detected.library, height=h, width=w)
        except Exception as exc:   # no optimum path for it, or one optimum gets wrong: torch.onnx decides
            LOG.info("optimum cannot export %s (%s: %s); using torch.onnx", loaded.detected.architecture,
                     type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
            exporter = "torch.onnx"
            for stale in Path(tmp).iterdir():
                stale.unlink() if stale.is_file() else shutil.rmtree(stale)
            dummy = torch.zeros(1, 3, h, w)
            with torch.no_grad():
                torch.onnx.export(loaded.module, (dummy,), str(exported), dynamo=False,
                                  input_names=["pixel_values"], output_names=["logits"], opset_version=opset,
                                  dynamic_axes={"pixel_values": {0: "batch_size"}, "logits": {0: "batch_size"}})
        place_onnx(exported, out_dir / "model.onnx", external_data_limit=limit)
    return exporter


def place_onnx(exported: Path, target: Path, *, external_data_limit: int = EXTERNAL_DATA_LIMIT) -> None:
    """Move an exported graph to `target`: as one file when it is small enough and self-contained,
    else as `target` + `model.onnx_data` beside it (whatever external files the exporter wrote are
    gathered into that one)."""
    import onnx

    from .onnx_file import external_data_files

    exported, target = Path(exported), Path(target)
    extra = external_data_files(exported)
    size = exported.stat().st_size + sum(p.stat().st_size for p in extra)
    if not extra and size <= external_data_limit:
        os.replace(exported, target)
        return
    model = onnx.load(str(exported), load_external_data=True)
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=EXTERNAL_DATA_NAME, size_threshold=1024)
    LOG.info("%s is %.1f MB: written with external data (%s)", target.name, size / 1e6, EXTERNAL_DATA_NAME)


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
                                   extra={"exporter": exporter, "opset": OPSET, "license": loaded.license,
                                          "onnx_bytes": _onnx_bytes(target),
                                          "external_data": (target / EXTERNAL_DATA_NAME).is_file()},
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


def _onnx_bytes(onnx_dir: Path) -> int:
    return sum(p.stat().st_size for p in Path(onnx_dir).glob("model.onnx*") if p.is_file())


def _replace_dir(new: Path, target: Path) -> None:
    """Put `new` at `target` with renames only; an old version is removed afterwards."""
    move_into_place(new, target, replace=True)
