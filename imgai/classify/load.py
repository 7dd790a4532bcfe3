"""Load a transformers- or timm-format model folder into PyTorch, safely.

Weights come from safetensors; a pickle `pytorch_model.bin` is read only with
`torch.load(weights_only=True)`, and a file whose unpickling needs more is refused.
No remote code is ever run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..cards import card_license
from ..errors import UnsafeFileError, UnsupportedModelError, require
from .architectures import Detected, detect_folder
from .preprocess import PreprocessSpec

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


@dataclass
class LoadedModel:
    module: object            # torch.nn.Module in eval mode: pixel tensor → logits
    labels: list[str]
    preprocess: PreprocessSpec
    detected: Detected
    license: str | None = None


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UnsupportedModelError(f"{path.name} is missing in {path.parent}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UnsupportedModelError(f"{path} is not valid JSON: {exc}") from exc


def weights_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        return shards[0]
    raise UnsupportedModelError(f"no weights in {folder}: expected model.safetensors (or pytorch_model.bin)")


def load_state_dict(folder: Path) -> dict:
    """The folder's weights as a state dict, never executing code."""
    path = weights_file(folder)
    if path.name.endswith(".index.json"):
        from safetensors.torch import load_file

        index = read_json(path)
        state = {}
        for shard in sorted(set(index.get("weight_map", {}).values())):
            shard_path = (folder / shard).resolve()
            if folder.resolve() not in shard_path.parents:
                raise UnsafeFileError(f"shard {shard!r} points outside the model folder {folder}")
            state.update(load_file(str(shard_path)))
        return state
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise UnsupportedModelError(f"{path} is not a readable safetensors file: {exc}") from exc
    return load_pickle_weights(path)


def load_pickle_weights(path: Path) -> dict:
    import pickle

    torch = require("torch")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, EOFError) as exc:
        raise UnsafeFileError(
            f"refused {path.name}: it is not a plain weights file (unpickling it would need more than "
            f"tensors: {str(exc).splitlines()[0][:200]}); ask for a safetensors version of the model") from exc
    if not isinstance(state, dict):
        raise UnsafeFileError(f"refused {path.name}: it holds a {type(state).__name__}, not a state dict")
    return state


def load_model(folder: Path) -> LoadedModel:
    folder = Path(folder)
    detected = detect_folder(folder)
    if detected.library == "transformers":
        return _load_transformers(folder, detected)
    if detected.library == "timm":
        return _load_timm(folder, detected)
    raise UnsupportedModelError(f"{folder} is an ONNX model; there is nothing to load into PyTorch")


def _strict_load(module, state: dict, folder: Path) -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UnsupportedModelError(
            f"weights in {folder} do not match its config.json: {len(missing)} missing "
            f"({', '.join(missing[:3])}…), {len(unexpected)} unexpected ({', '.join(unexpected[:3])}…)")


def _load_transformers(folder: Path, detected: Detected) -> LoadedModel:
    torch = require("torch")
    transformers = require("transformers")

    config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    state = load_state_dict(folder)
    with torch.device("cpu"):
        model = transformers.AutoModelForImageClassification.from_config(config, trust_remote_code=False)
    _strict_load(model, state, folder)
    model.eval()
    n = config.num_labels
    id2label = {int(k): v for k, v in (config.id2label or {}).items()}
    labels = [id2label.get(i, f"LABEL_{i}") for i in range(n)]
    processor_path = folder / "preprocessor_config.json"
    if not processor_path.is_file():
        raise UnsupportedModelError(f"{folder} has no preprocessor_config.json; imgai needs it to preprocess "
                                    "images as the model expects")
    multi = getattr(config, "problem_type", None) == "multi_label_classification"
    spec = PreprocessSpec.from_transformers(read_json(processor_path), multi_label=multi)
    size = getattr(config, "image_size", None)
    check_input_size(lambda x: model(pixel_values=x), spec, (size, size) if isinstance(size, int) else size,
                     "preprocessor_config.json", "config.json's image_size")

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            return self.inner(pixel_values=pixel_values).logits

    return LoadedModel(Logits(model).eval(), labels, spec, detected, card_license(folder))


def _load_timm(folder: Path, detected: Detected) -> LoadedModel:
    torch = require("torch")
    timm = require("timm")

    config = read_json(folder / "config.json")
    model_args = dict(config.get("model_args") or {})
    # timm's own save_for_hf repeats num_classes inside model_args
    num_classes = int(config.get("num_classes", model_args.pop("num_classes", 1000)))
    model_args.pop("num_classes", None)
    with torch.device("cpu"):
        model = timm.create_model(detected.architecture, pretrained=False, num_classes=num_classes, **model_args)
    _strict_load(model, load_state_dict(folder), folder)
    model.eval()
    labels = config.get("label_names")
    if not labels:
        labels = _imagenet_labels() if num_classes == 1000 else [f"class_{i}" for i in range(num_classes)]
    if len(labels) != num_classes:
        raise UnsupportedModelError(f"config.json lists {len(labels)} label_names for {num_classes} classes")
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    cfg.update(config.get("pretrained_cfg") or {})
    spec = PreprocessSpec.from_timm(cfg)
    spec.multi_label = bool(config.get("multi_label", False))   # imgai-trained BCE models say so
    fixed = getattr(getattr(model, "patch_embed", None), "img_size", None)   # ViT-like: position embeddings
    check_input_size(model, spec, fixed, "config.json's pretrained_cfg", "the network (model_args img_size)")
    return LoadedModel(model, list(labels), spec, detected, card_license(folder) or cfg.get("license"))


def check_input_size(forward, spec: PreprocessSpec, declared, spec_source: str, model_source: str) -> None:
    """Refuse preprocessing that makes images of a size the network does not take (a ViT's position
    embeddings fix it), naming both values. Only tried where the two sizes differ: many networks
    take any size (a DINOv2 interpolates; a CNN pools)."""
    if declared is None or tuple(int(v) for v in declared) == spec.input_size:
        return
    torch = require("torch")
    h, w = spec.input_size
    try:
        with torch.no_grad():
            forward(torch.zeros(1, 3, h, w))
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise UnsupportedModelError(
            f"{spec_source} makes {h}×{w} images but {model_source} is {declared[0]}×{declared[1]} and the network "
            f"refuses other sizes ({str(exc).splitlines()[0][:160]}); the files contradict each other: fix one of "
            "them") from exc


def _imagenet_labels() -> list[str]:
    from .imagenet import imagenet_labels

    return imagenet_labels()
