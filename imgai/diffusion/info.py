"""`quantization_info.json`: what was converted, from which revision, how, and how well.

It is written into every output folder. A re-run compares its `source.revision` and `settings`
with what it would do now and skips the target when they match (unless forced).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from .. import __version__
from .quantize import ConversionReport
from .source import Source, dtype_summary

INFO_FILE = "quantization_info.json"
FORMAT_VERSION = 1
ONNX_PARTS = {"vae_encoder": "vae", "vae_decoder": "vae"}   # ONNX component → source component
LIBRARIES = ("torch", "diffusers", "transformers", "torchao", "optimum", "optimum-onnx", "onnx", "onnxruntime",
             "huggingface_hub", "safetensors", "accelerate")

METHODS = {("pytorch", "INT8"): "torchao Int8WeightOnlyConfig via diffusers PipelineQuantizationConfig",
           ("pytorch", "FP16"): "cast to 16-bit (bfloat16 where the source denoiser is bfloat16)",
           ("onnx", "FP32"): "optimum.exporters.onnx main_export task=text-to-image fp32"}


def settings_for(key: str, backend: str, quantization: str, check: dict, *, device: str = "cpu") -> dict:
    """Everything that decides the output besides the source itself (on CUDA the unquantized layers
    are 16-bit, so the device is part of it)."""
    return {"format": FORMAT_VERSION, "key": key, "backend": backend, "quantization": quantization,
            "method": METHODS[(backend, quantization)], "device": device, "check": check}


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "imgai": __version__}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def component_table(source: Source, out: Path, report: ConversionReport, *, backend: str) -> dict:
    """Per output component: size and dtype before and after, and what was done to it."""
    table = {}
    names = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "check")
    for name in names:
        src_name = ONNX_PARTS.get(name, name) if backend == "onnx" else name
        src = source.components.get(src_name)
        if src is None or not src.has_weights:
            continue
        after_path = out / name
        if backend == "onnx":
            dtype_after = "float32 (ONNX)"
        else:
            dtype_after = dtype_summary(after_path)
        entry = report.components.get(name) or report.components.get(src_name) or {}
        table[name] = {"source_component": src_name, "params": src.params, "dtype_before": src.dtype,
                       "dtype_after": dtype_after, "bytes_before": src.file_bytes,
                       "bytes_after": folder_bytes(after_path), "quantized": bool(entry.get("quantized")),
                       "note": entry.get("note", "")}
    return table


def build_info(*, target: str, key: str, pipeline: str, source: Source, backend: str, quantization: str,
               settings: dict, report: ConversionReport, components: dict, check: dict, estimate: dict,
               peak_rss_bytes: int, baseline_rss_bytes: int, durations: dict, warning: str | None) -> dict:
    weights_before = sum(c.file_bytes for c in source.weight_components)
    weights_after = sum(c["bytes_after"] for c in components.values())
    return {
        "format": FORMAT_VERSION,
        "target": target,
        "key": key,
        "pipeline": pipeline,
        "source": source.to_dict(),
        "base_model": source.base_model,
        "backend": backend,
        "quantization": quantization,
        "dtype": report.dtype,
        "load_torch_dtype": report.load_dtype if backend == "pytorch" else None,
        "settings": settings,
        "components": components,
        "size": {"weights_bytes_before": weights_before, "weights_bytes_after": weights_after,
                 "ratio": round(weights_after / weights_before, 4) if weights_before else None},
        "torchao" if backend == "pytorch" else "onnx": report.config,
        "versions": library_versions(),
        "check": check,
        "memory": {"estimate": estimate, "peak_rss_bytes": peak_rss_bytes,
                   "baseline_rss_bytes": baseline_rss_bytes},   # the process before this target began
        "durations_s": {k: round(v, 3) for k, v in durations.items()},
        "warning": warning,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_info(folder: Path, info: dict) -> Path:
    path = folder / INFO_FILE
    path.write_text(json.dumps(info, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_info(folder: Path) -> dict | None:
    path = Path(folder) / INFO_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def is_up_to_date(folder: Path, *, revision: str, settings: dict) -> bool:
    """The output exists, passed its check, and was made from this revision with these settings."""
    info = read_info(folder)
    return bool(info and info.get("source", {}).get("revision") == revision
                and info.get("settings") == settings and info.get("check", {}).get("passed"))
