"""The trainable architectures: one table that the CLI, the UI, the docs and the tests read.

Every model is built through timm, so a trained model is always saved in one format (timm's
config.json + model.safetensors) that Convert already understands. Each architecture names its
ImageNet weights repo on the Hub (`timm/<arch>.<tag>`); they are used when they are on this
machine (the Hugging Face cache, where imgai.train.pretrained downloads them when a model is
created, or the torch hub cache; the EfficientNet-Lite0 demo weights ship with imgai);
otherwise training starts from scratch and the table says so. Nothing is downloaded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..classify.imagenet import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ConfigError, ImgaiError
from ..log import get_logger


@dataclass(frozen=True)
class TrainArchitecture:
    key: str                 # what users type: resnet18, mobilenet_v3_small, efficientnet_lite0
    timm_name: str           # what timm builds and what config.json records
    family: str              # ResNet | EfficientNet | MobileNet | ConvNeXt | ViT | FastViT
    params_m: float          # millions of parameters with the 1000-class ImageNet head
    image_size: int          # the resolution its ImageNet weights were trained at
    weights_repo: str        # its ImageNet weights on the Hub: timm's `timm/<arch>.<tag>` repo
    weights: str = "cache"   # "cache": ImageNet weights if cached locally; "demo": imgai's embedded weights
    size_arg: str | None = None  # the timm argument that fixes the input size (ViT: img_size), set to the
                                 # training size; the ImageNet weights' position embeddings are resampled to it

    def build_args(self, image_size: int | None, model_args: dict | None = None) -> dict:
        """timm.create_model keyword arguments: the input size where the network fixes it, then `model_args`."""
        size = {self.size_arg: image_size} if self.size_arg and image_size else {}
        return {**size, **(model_args or {})}


ARCHITECTURES: dict[str, TrainArchitecture] = {a.key: a for a in (
    TrainArchitecture("resnet18", "resnet18", "ResNet", 11.7, 224, "timm/resnet18.a1_in1k"),
    TrainArchitecture("resnet34", "resnet34", "ResNet", 21.8, 224, "timm/resnet34.a1_in1k"),
    TrainArchitecture("resnet50", "resnet50", "ResNet", 25.6, 224, "timm/resnet50.a1_in1k"),
    TrainArchitecture("efficientnet_b0", "efficientnet_b0", "EfficientNet", 5.3, 224, "timm/efficientnet_b0.ra_in1k"),
    TrainArchitecture("efficientnet_b1", "efficientnet_b1", "EfficientNet", 7.8, 240,
                      "timm/efficientnet_b1.ra4_e3600_r240_in1k"),
    TrainArchitecture("efficientnet_b2", "efficientnet_b2", "EfficientNet", 9.1, 256, "timm/efficientnet_b2.ra_in1k"),
    TrainArchitecture("efficientnet_b3", "efficientnet_b3", "EfficientNet", 12.2, 288, "timm/efficientnet_b3.ra2_in1k"),
    TrainArchitecture("mobilenet_v2", "mobilenetv2_100", "MobileNet", 3.5, 224, "timm/mobilenetv2_100.ra_in1k"),
    TrainArchitecture("mobilenet_v3_small", "mobilenetv3_small_100", "MobileNet", 2.5, 224,
                      "timm/mobilenetv3_small_100.lamb_in1k"),
    TrainArchitecture("mobilenet_v3_large", "mobilenetv3_large_100", "MobileNet", 5.5, 224,
                      "timm/mobilenetv3_large_100.ra_in1k"),
    TrainArchitecture("efficientnet_lite0", "tf_efficientnet_lite0", "EfficientNet", 4.7, 224,
                      "timm/tf_efficientnet_lite0.in1k", weights="demo"),
    # modern families that fine-tune well on a CPU (timm's ImageNet-1k weights)
    TrainArchitecture("convnext_atto", "convnext_atto", "ConvNeXt", 3.7, 224, "timm/convnext_atto.d2_in1k"),
    TrainArchitecture("convnext_nano", "convnext_nano", "ConvNeXt", 15.6, 224, "timm/convnext_nano.in12k_ft_in1k"),
    TrainArchitecture("vit_tiny", "vit_tiny_patch16_224", "ViT", 5.7, 224,
                      "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", size_arg="img_size"),
    TrainArchitecture("fastvit_t8", "fastvit_t8", "FastViT", 4.0, 256, "timm/fastvit_t8.apple_in1k"),
)}


def get_architecture(name: str) -> TrainArchitecture:
    """Look up by key (`mobilenet_v2`) or timm name (`mobilenetv2_100`); unknown names fail loudly."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    for arch in ARCHITECTURES.values():
        if arch.timm_name == name:
            return arch
    raise ConfigError(f"unknown architecture {name!r}; trainable architectures: {', '.join(ARCHITECTURES)} "
                      "(see `imgai train architectures`)")


@dataclass(frozen=True)
class StartingWeights:
    """Where a model's first weights come from."""
    kind: str                    # "hf-cache" | "torch-hub-cache" | "demo" | "scratch"
    path: Path | None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    source: str | None = None    # hf-cache: "timm/<arch>.<tag>@<commit>", what the job and card record

    @property
    def pretrained(self) -> bool:
        return self.kind != "scratch"

    def describe(self) -> str:
        return {
            "hf-cache": f"ImageNet weights {self.source} from the local Hugging Face cache",
            "torch-hub-cache": "ImageNet weights from the local torch hub cache",
            "demo": "ImageNet weights of imgai's embedded demo model",
            "scratch": "no pretrained weights on this machine: training from scratch (random init)",
        }[self.kind]


def starting_weights(arch: TrainArchitecture, *, model_args: dict | None = None) -> StartingWeights:
    """The local ImageNet weights for `arch`, or "scratch". A changed architecture (model_args)
    cannot take ImageNet weights, so it starts from scratch."""
    if model_args:
        return StartingWeights("scratch", None)
    if arch.weights == "demo":
        folder = _demo_folder()
        if folder is not None:
            return StartingWeights("demo", folder / "model.safetensors", *_mean_std(folder / "config.json"))
        return StartingWeights("scratch", None)
    import timm

    cfg = timm.models.get_pretrained_cfg(arch.timm_name)
    mean, std = tuple(cfg.mean), tuple(cfg.std)
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(arch.weights_repo, "model.safetensors")
    if isinstance(found, str):
        path = Path(found)
        if (path.parent / "config.json").is_file():
            mean, std = _mean_std(path.parent / "config.json")
        return StartingWeights("hf-cache", path, mean, std, source=f"{arch.weights_repo}@{path.parent.name}")
    if cfg.url:
        import torch

        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if cached.is_file():
            return StartingWeights("torch-hub-cache", cached, mean, std)
    return StartingWeights("scratch", None)


def _demo_folder() -> Path | None:
    """The embedded demo model's timm folder (contract: imgai.demo.demo_weights_folder())."""
    try:
        from ..demo import demo_weights_folder
    except ImportError:
        return None
    try:
        folder = Path(demo_weights_folder())
    except (ImgaiError, OSError, RuntimeError) as exc:   # no torch/timm, an unwritable home, a bad package
        get_logger("imgai.train").warning("the demo model's weights are unavailable (%s): "
                                          "efficientnet_lite0 starts from scratch", exc)
        return None
    return folder if (folder / "model.safetensors").is_file() else None


def _mean_std(config_path: Path) -> tuple[tuple, tuple]:
    import json

    try:
        cfg = json.loads(config_path.read_text()).get("pretrained_cfg", {})
        return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
    except (OSError, ValueError):
        return IMAGENET_MEAN, IMAGENET_STD


def architectures_table() -> list[dict]:
    """One row per trainable architecture, with what it would start from on this machine."""
    rows = []
    for arch in ARCHITECTURES.values():
        weights = starting_weights(arch)
        rows.append({"architecture": arch.key, "timm_name": arch.timm_name, "family": arch.family,
                     "params_m": arch.params_m, "image_size": arch.image_size, "weights_repo": arch.weights_repo,
                     "pretrained": weights.pretrained, "starting_weights": weights.describe()})
    return rows


def build_model(arch: TrainArchitecture, num_classes: int, *, model_args: dict | None = None,
                weights: StartingWeights | None = None, image_size: int | None = None):
    """A timm model with a fresh `num_classes` head, its body loaded from `weights` when given.
    `image_size`: the training size, for architectures whose network fixes it (arch.size_arg)."""
    import timm

    try:
        model = timm.create_model(arch.timm_name, pretrained=False, num_classes=num_classes,
                                  **arch.build_args(image_size, model_args))
    except TypeError as exc:
        raise ConfigError(f"model_args {model_args!r} do not fit timm's {arch.timm_name}: {exc}") from exc
    if weights is not None and weights.pretrained:
        load_body_weights(model, weights.path)
    return model


def _in_head(model):
    """Whether a state-dict key belongs to `model`'s classifier head(s) (timm's pretrained_cfg names them)."""
    head = model.pretrained_cfg.get("classifier") or "classifier"
    heads = (head,) if isinstance(head, str) else tuple(head)
    return lambda k: any(k.startswith(h + ".") for h in heads)


def body_mismatches(model, state: dict) -> list[str]:
    """The body tensors (all but the classifier head) of `model` that `state` lacks or shapes
    differently, and the non-head tensors of `state` the model does not have, described, in order."""
    in_head = _in_head(model)
    own = {k: v for k, v in model.state_dict().items() if not in_head(k) and not k.endswith("num_batches_tracked")}
    found = []
    for k, v in own.items():
        if k not in state:
            found.append(f"{k!r} (missing; the model has {list(v.shape)})")
        elif tuple(state[k].shape) != tuple(v.shape):
            found.append(f"{k!r} (weights {list(state[k].shape)}, model {list(v.shape)})")
    found += [f"{k!r} (not in the model)" for k in state
              if k not in own and not in_head(k) and not k.endswith("num_batches_tracked")]
    return found


def load_body_weights(model, path: Path) -> None:
    """Load ImageNet weights into everything but the classifier head (which has our classes)."""
    state = read_state_dict(path)
    state = _fit_input_size(model, state)
    problems = body_mismatches(model, state)
    if problems:
        raise ConfigError(f"the starting weights in {path} do not fit {model.pretrained_cfg.get('architecture')}: "
                          f"first mismatching tensor {problems[0]} ({len(problems)} in all); remove them from the "
                          "cache to train from scratch")
    own, in_head = model.state_dict(), _in_head(model)
    model.load_state_dict({k: v for k, v in state.items() if k in own and not in_head(k)}, strict=False)


def _fit_input_size(model, state: dict) -> dict:
    """ImageNet weights for a network built at another input size: timm's own checkpoint filter of
    the model's module resamples what depends on it (a ViT's position embeddings)."""
    import sys

    own, in_head = model.state_dict(), _in_head(model)
    if all(k not in own or in_head(k) or tuple(v.shape) == tuple(own[k].shape) for k, v in state.items()):
        return state
    adapt = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    return adapt(state, model) if adapt is not None else state


def read_state_dict(path: Path) -> dict:
    """Weights from safetensors, or a pickle read with weights_only=True (never runs code)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        from ..errors import UnsafeFileError

        raise UnsafeFileError(f"refused to load {path}: it is not a plain weights file ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state
