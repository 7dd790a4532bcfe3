"""Can imgai take this Hub repo? Decided from metadata and config.json against the support table
(the conversion sweep's results), never from the repo's name; and which of its files a download needs.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..classify.architectures import LIBRARIES, ONNX_LABEL_FILES, Detected, Refused, detect_config
from ..errors import UnsupportedModelError

IMAGE_TASK = "image-classification"
# Files a PyTorch classifier needs besides its weights. README.md carries the license (the
# converted model's card copies it); it is a few kilobytes.
SIDE_FILES = ("config.json", "preprocessor_config.json", "README.md", "preprocess.json") + ONNX_LABEL_FILES
SHARD = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")


@dataclass(frozen=True)
class RepoFile:
    path: str
    size: int | None
    etag: str | None       # how the HF cache names its blob: LFS sha256, else the git blob id


def metadata_verdict(*, config: dict | None, pipeline_tag: str | None,
                     library_name: str | None) -> tuple[str, str] | None:
    """(category, reason) when the repo is certainly not offered, judged from listing metadata
    alone (category: a key of architectures.HIDDEN_REASONS); None when config.json has to be read."""
    config = config or {}
    if config.get("model_type") or config.get("auto_map"):
        try:
            detect_config(config)
        except Refused as exc:
            return exc.category, str(exc)
    if pipeline_tag and pipeline_tag != IMAGE_TASK:
        return "task", f"task {pipeline_tag!r}, not {IMAGE_TASK}"
    if library_name and library_name not in LIBRARIES:
        return "unsupported", f"library {library_name!r} (imgai takes transformers, timm or ONNX)"
    return None


def category_of(exc: Exception) -> str:
    """The HIDDEN_REASONS key an UnsupportedModelError counts under."""
    return getattr(exc, "category", "unsupported")


def detect(config: dict) -> Detected:
    """The foundation's detection of a config.json (raises UnsupportedModelError with the reason)."""
    return detect_config(config)


def num_labels(config: dict) -> int | None:
    if isinstance(config.get("id2label"), dict) and config["id2label"]:
        return len(config["id2label"])
    for key in ("num_labels", "num_classes"):
        if isinstance(config.get(key), int):
            return config[key]
    if isinstance(config.get("label_names"), list):
        return len(config["label_names"])
    return None


def to_repo_files(siblings) -> list[RepoFile]:
    out = []
    for s in siblings or []:
        lfs = getattr(s, "lfs", None)
        size = lfs.size if lfs else getattr(s, "size", None)
        etag = lfs.sha256 if lfs else getattr(s, "blob_id", None)
        out.append(RepoFile(s.rfilename, size, etag))
    return out


def weight_files(files: list[RepoFile]) -> list[RepoFile]:
    """The weights to fetch: safetensors when there are any (a pickle never), else pytorch_model.bin."""
    top = {f.path: f for f in files if "/" not in f.path}
    if "model.safetensors" in top:
        return [top["model.safetensors"]]
    if "model.safetensors.index.json" in top:
        return [top["model.safetensors.index.json"]] + [f for p, f in sorted(top.items()) if SHARD.match(p)]
    if "pytorch_model.bin" in top and not any(p.endswith(".safetensors") for p in top):
        return [top["pytorch_model.bin"]]
    return []


def onnx_files(files: list[RepoFile]) -> list[RepoFile]:
    top = [f for f in files if "/" not in f.path]
    models = [f for f in top if f.path.endswith(".onnx")]
    if len(models) != 1:
        return []
    stem = models[0].path
    return models + [f for f in top if fnmatch.fnmatch(f.path, f"{stem}_data") or fnmatch.fnmatch(f.path, f"{stem}.data")
                     or f.path.endswith(".onnx_data")]


def plan_download(files: list[RepoFile], *, library: str) -> list[RepoFile]:
    """Exactly the files imgai fetches for a model; refuses, before anything is fetched, a repo
    without weights imgai can read, or a transformers model without its preprocessor config."""
    onnx = library == "onnx"
    weights = onnx_files(files) if onnx else weight_files(files)
    names = {f.path for f in files}
    if not weights:
        listing = ", ".join(f.path for f in files if "/" not in f.path)[:300]
        what = "exactly one .onnx model" if onnx else "model.safetensors (or a sharded index, or pytorch_model.bin)"
        raise UnsupportedModelError(f"the repo holds no {what} imgai can read (files: {listing or 'none'})")
    if library == "transformers" and "preprocessor_config.json" not in names:
        raise UnsupportedModelError("the repo has no preprocessor_config.json; imgai needs it to preprocess images "
                                    "as the model expects")
    side = [f for f in files if f.path in SIDE_FILES]
    return side + weights


def has_safetensors(files: list[RepoFile]) -> bool:
    return any(f.path.endswith(".safetensors") and "/" not in f.path for f in files)


def is_onnx_repo(files: list[RepoFile]) -> bool:
    """A ready-made ONNX model: one .onnx file and a label file, and no PyTorch weights; or a
    WD-style tagger (.onnx + selected_tags.csv), whose safetensors twin is not fetched."""
    names = {f.path for f in files}
    if onnx_files(files) and "selected_tags.csv" in names:
        return True
    return bool(onnx_files(files)) and any(n in names for n in ONNX_LABEL_FILES) and not weight_files(files)


def size_of(files: list[RepoFile]) -> int | None:
    sizes = [f.size for f in files]
    return None if any(s is None for s in sizes) else sum(sizes)


def human_size(n: int | float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"
