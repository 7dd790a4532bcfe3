"""The ONNX backend: Optimum's exporter, FP32, one `model.onnx` per component.

`main_export(folder, task="text-to-image")` (the task is required for a local folder) writes
unet/ or transformer/, vae_encoder/, vae_decoder/, text_encoder*/ plus tokenizers, scheduler and
model_index.json; a component over 2 GB keeps its weights in `model.onnx_data` next to it. Every
exported file must pass `onnx.checker` (full check) before it is kept.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError
from .keys import DiffusionModelKey
from .quantize import ConversionReport, require_safetensors_only
from .source import Source


def export_onnx(source: Source, model_key: DiffusionModelKey, out: Path, *, opset: int | None = None) -> ConversionReport:
    from optimum.exporters.onnx import main_export

    try:
        main_export(str(source.path), output=str(out), task="text-to-image", device="cpu", dtype="fp32",
                    opset=opset, do_validation=False, library_name="diffusers")
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ConversionError(f"Optimum could not export {source.spec} to ONNX: {exc}") from exc
    files = sorted(out.rglob("*.onnx"))
    if not files:
        raise ConversionError(f"Optimum wrote no model.onnx for {source.spec}")
    checked = check_onnx_files(out)
    require_safetensors_only(out)
    import onnx

    report = ConversionReport(dtype="float32", load_dtype="float32", config={
        "exporter": "optimum.exporters.onnx.main_export(task='text-to-image', dtype='fp32')",
        "optimum_onnx_version": _version("optimum-onnx"),
        "opset": sorted({c["opset"] for c in checked.values()}),
        "onnx_ir_version": onnx.IR_VERSION,
        "external_data": sorted(name for name, c in checked.items() if c["external_data"]),
        "checker": "onnx.checker.check_model(full_check=True) passed for every file",
    })
    for name, c in checked.items():
        report.components[name] = {"quantized": False,
                                   "note": f"ONNX FP32, opset {c['opset']}" +
                                           (", weights in model.onnx_data (external data)" if c["external_data"] else "")}
    return report


def check_onnx_files(folder: Path) -> dict[str, dict]:
    """Run the full ONNX checker on every exported file; a failure fails the target."""
    import onnx

    results = {}
    for path in sorted(folder.rglob("*.onnx")):
        name = path.parent.relative_to(folder).as_posix()
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as exc:  # onnx raises several checker/shape-inference error types
            raise ConversionError(f"{name}/{path.name} failed onnx.checker: {exc}") from exc
        proto = onnx.load(str(path), load_external_data=False)
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
        external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
        results[name] = {"opset": opset, "external_data": external}
    return results


def load_onnx_output(folder: Path):
    from optimum.onnxruntime import ORTPipelineForText2Image

    return ORTPipelineForText2Image.from_pretrained(str(folder), provider="CPUExecutionProvider")


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
