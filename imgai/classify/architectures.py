"""The supported image-classification architectures: support_table.json, written by the
conversion sweep (sweep.py), is the one table that detection, the Hub search, the UI, the CLI,
the docs and the tests read. A family is offered because the sweep converted and validated it.

A model is recognised by its metadata (config.json), never by its name.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnsupportedModelError


SUPPORT_TABLE_PATH = Path(__file__).with_name("support_table.json")
LIBRARIES = ("transformers", "timm", "onnx")
ONNX_LABEL_FILES = ("labels.json", "labels.txt", "selected_tags.csv")
HEAD_SUFFIX = "ForImageClassification"
# Why a model is not offered: the categories Browse counts hidden results by.
HIDDEN_REASONS = {
    "custom_code": "needs custom code",
    "head": "not an image-classification head",
    "failed": "family failed the sweep",
    "weights": "no safetensors weights",
    "unsupported": "not a family the sweep tried",
    "task": "not image classification",
}


@dataclass(frozen=True)
class Support:
    """One row of support_table.json: a candidate the sweep built, exported and validated."""
    library: str                  # transformers | timm
    name: str                     # transformers model_type, or the timm model the sweep built
    family: str
    patterns: tuple[str, ...]     # timm: the architectures the row stands for
    passed: bool
    seconds: float
    reason: str | None = None
    shrunk: str | None = None
    exporter: str | None = None
    parameters: int | None = None
    onnx_bytes: int | None = None
    max_abs_diff: float | None = None


@dataclass(frozen=True)
class Family:
    name: str                              # shown to users: ResNet, ViT, ConvNeXt, …
    transformers_model_types: tuple[str, ...]  # config.json "model_type"
    timm_patterns: tuple[str, ...]         # config.json "architecture" (fnmatch patterns)


@dataclass(frozen=True)
class Detected:
    """What a model folder holds."""
    library: str          # transformers | timm | onnx
    architecture: str     # e.g. ResNetForImageClassification, tf_efficientnet_lite0, onnx
    family: str           # ResNet | ViT | … | ONNX
    model_type: str | None = None


class Refused(UnsupportedModelError):
    """Detection refused a model; `category` is one of HIDDEN_REASONS (what Browse counts)."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category


def read_support_table(path: Path = SUPPORT_TABLE_PATH) -> tuple[Support, ...]:
    try:
        rows = json.loads(Path(path).read_text()).get("candidates", [])
    except FileNotFoundError:
        return ()
    fields = set(Support.__dataclass_fields__)
    return tuple(Support(**{**{k: v for k, v in r.items() if k in fields}, "patterns": tuple(r.get("patterns", ()))})
                 for r in rows)


SUPPORT: tuple[Support, ...] = read_support_table()


def _families(rows: tuple[Support, ...]) -> tuple[Family, ...]:
    names: dict[str, tuple[list, list]] = {}
    for r in rows:
        if r.passed:
            types, patterns = names.setdefault(r.family, ([], []))
            (types if r.library == "transformers" else patterns).extend([r.name] if r.library == "transformers"
                                                                         else r.patterns)
    return tuple(Family(n, tuple(t), tuple(p)) for n, (t, p) in sorted(names.items(), key=lambda i: i[0].lower()))


FAMILIES: tuple[Family, ...] = _families(SUPPORT)


def supported_summary() -> str:
    names = [f.name for f in FAMILIES]
    return (f"the {len(names)} families that passed imgai's conversion sweep are {', '.join(names)} "
            "(`imgai hub families` shows the table)")


def transformers_row(model_type: str) -> Support | None:
    return next((r for r in SUPPORT if r.library == "transformers" and r.name == model_type), None)


def timm_row(architecture: str) -> Support | None:
    base = architecture.split(".")[0]
    return next((r for r in SUPPORT if r.library == "timm" and (r.name == base or any(
        fnmatch.fnmatch(base, p) for p in r.patterns))), None)


def family_of_model_type(model_type: str) -> Family | None:
    row = transformers_row(model_type)
    return next((f for f in FAMILIES if f.name == row.family), None) if row and row.passed else None


def family_of_timm(architecture: str) -> Family | None:
    row = timm_row(architecture)
    return next((f for f in FAMILIES if f.name == row.family), None) if row and row.passed else None


def _failed(row: Support, what: str) -> Refused:
    return Refused("failed", f"{what} ({row.family}) is not offered: it failed imgai's conversion sweep "
                             f"({row.reason})")


def detect_config(config: dict) -> Detected:
    """Decide from a config.json's content and the support table; raise `Refused` naming what was
    found and why it is not taken."""
    auto_map = config.get("auto_map")
    if auto_map:
        code = ", ".join(f"{k} → {v}" for k, v in (auto_map.items() if isinstance(auto_map, dict) else []))
        raise Refused("custom_code", f"the model needs its own code (auto_map: {code or auto_map}); imgai never "
                                     "runs a repo's code: choose a model of a family imgai supports")
    if "model_type" in config:
        model_type = config["model_type"]
        archs = config.get("architectures") or []
        if archs and not any(HEAD_SUFFIX in a for a in archs):
            raise Refused("head", f"unsupported architecture {archs[0]!r}: imgai takes image-classification heads "
                                  f"(…{HEAD_SUFFIX}), not {_head_kind(archs[0])}")
        row = transformers_row(model_type)
        if row is None:
            raise Refused("unsupported", f"unsupported architecture: transformers model_type {model_type!r} "
                                         f"({', '.join(archs) or 'no architectures listed'}) has no image-classification "
                                         f"head imgai's sweep tried; {supported_summary()}")
        if not row.passed:
            raise _failed(row, f"transformers model_type {model_type!r}")
        return Detected("transformers", archs[0] if archs else model_type, row.family, model_type)
    pretrained_cfg = config.get("pretrained_cfg") if isinstance(config.get("pretrained_cfg"), dict) else {}
    if "architecture" in config or "architecture" in pretrained_cfg:
        arch = config.get("architecture") or pretrained_cfg["architecture"]
        row = timm_row(str(arch))
        if row is None:
            raise Refused("unsupported", f"unsupported architecture: timm {arch!r} is not in a family imgai's sweep "
                                         f"tried; {supported_summary()}")
        if not row.passed:
            raise _failed(row, f"timm {arch!r}")
        return Detected("timm", arch, row.family)
    raise Refused("unsupported", "config.json names no architecture (neither transformers 'model_type' nor "
                                 f"timm 'architecture'); {supported_summary()}")


def _head_kind(architecture: str) -> str:
    for marker, kind in (("ObjectDetection", "an object-detection head"), ("Segmentation", "a segmentation head"),
                         ("DepthEstimation", "a depth-estimation head"), ("Sequence", "a text head")):
        if marker in architecture:
            return kind
    return f"{architecture}"


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
