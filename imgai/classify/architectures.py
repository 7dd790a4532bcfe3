"""The supported image-classification architectures: one table that detection, the Hub search,
the UI, the docs and the tests all read.

A model is recognised by its metadata (config.json), never by its name.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnsupportedModelError


@dataclass(frozen=True)
class Family:
    name: str                              # shown to users: ResNet, EfficientNet, MobileNet
    transformers_model_types: tuple[str, ...]  # config.json "model_type"
    timm_patterns: tuple[str, ...]         # config.json "architecture" (fnmatch patterns)


FAMILIES: tuple[Family, ...] = (
    Family("ResNet", ("resnet",), ("resnet[0-9]*", "resnet[0-9]*.*", "resnetv2_*", "resnet[0-9]*d", "seresnet*")),
    Family("EfficientNet", ("efficientnet",), ("efficientnet_*", "tf_efficientnet_*", "efficientnetv2_*",
                                               "tf_efficientnetv2_*")),
    Family("MobileNet", ("mobilenet_v1", "mobilenet_v2"), ("mobilenetv2_*", "mobilenetv3_*", "tf_mobilenetv3_*",
                                                            "mobilenetv4_*")),
)

LIBRARIES = ("transformers", "timm", "onnx")
ONNX_LABEL_FILES = ("labels.json", "labels.txt", "selected_tags.csv")


@dataclass(frozen=True)
class Detected:
    """What a model folder holds."""
    library: str          # transformers | timm | onnx
    architecture: str     # e.g. ResNetForImageClassification, tf_efficientnet_lite0, onnx
    family: str           # ResNet | EfficientNet | MobileNet | ONNX
    model_type: str | None = None


def supported_summary() -> str:
    parts = []
    for f in FAMILIES:
        parts.append(f"{f.name} (transformers model_type {', '.join(f.transformers_model_types)}; "
                     f"timm {', '.join(p.replace('[0-9]', '') for p in f.timm_patterns[:3])})")
    return "; ".join(parts)


def family_of_model_type(model_type: str) -> Family | None:
    return next((f for f in FAMILIES if model_type in f.transformers_model_types), None)


def family_of_timm(architecture: str) -> Family | None:
    for f in FAMILIES:
        if any(fnmatch.fnmatch(architecture, p) for p in f.timm_patterns):
            return f
    return None


def detect_config(config: dict) -> Detected:
    """Decide from a config.json's content; raise UnsupportedModelError naming what was found."""
    if "model_type" in config:
        model_type = config["model_type"]
        family = family_of_model_type(model_type)
        archs = config.get("architectures") or []
        if family is None:
            raise UnsupportedModelError(
                f"unsupported architecture: transformers model_type {model_type!r} "
                f"({', '.join(archs) or 'no architectures listed'}); supported: {supported_summary()}")
        if archs and not any(a.endswith("ForImageClassification") for a in archs):
            raise UnsupportedModelError(
                f"unsupported architecture {archs[0]!r}: imgai takes image-classification heads "
                f"(…ForImageClassification) of {family.name}")
        return Detected("transformers", archs[0] if archs else model_type, family.name, model_type)
    if "architecture" in config:
        arch = config["architecture"]
        family = family_of_timm(arch)
        if family is None:
            raise UnsupportedModelError(
                f"unsupported architecture: timm {arch!r}; supported: {supported_summary()}")
        return Detected("timm", arch, family.name)
    raise UnsupportedModelError("config.json names no architecture (neither transformers 'model_type' nor "
                                f"timm 'architecture'); supported: {supported_summary()}")


def detect_folder(folder: Path) -> Detected:
    """Detect a local model folder: transformers, timm, or a ready-made ONNX model with labels."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UnsupportedModelError(f"{folder} is not a folder; give a model folder or a Hub id (org/name)")
    onnx_files = sorted(folder.glob("*.onnx"))
    config_path = folder / "config.json"
    if onnx_files and (folder / "selected_tags.csv").is_file():
        return Detected("onnx", "onnx", "ONNX")     # a WD-style tagger; its config.json describes a twin
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UnsupportedModelError(f"{config_path} is not valid JSON: {exc}") from exc
        if not onnx_files or "model_type" in config or "architecture" in config:
            if onnx_files and not _has_weights(folder):
                return Detected("onnx", "onnx", "ONNX")
            return detect_config(config)
    if onnx_files:
        return Detected("onnx", "onnx", "ONNX")
    raise UnsupportedModelError(
        f"{folder} holds no config.json and no .onnx model; imgai takes transformers or timm folders "
        f"(config.json + safetensors) or an ONNX model with a label file ({', '.join(ONNX_LABEL_FILES)})")


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or (folder / "pytorch_model.bin").exists()
