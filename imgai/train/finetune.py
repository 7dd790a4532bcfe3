"""The settings a run starts with when it fine-tunes ImageNet weights (`finetune_defaults`): read
from the model (its architecture and whether its weights are here or coming) and the data's size.
Above both `models` (which makes a model and prepares its weights) and `pretrained` (the weights),
so neither imports the other."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .architectures import get_architecture, starting_weights
from .data import check_data, resolve_data
from .models import resolve_model
from .pretrained import active_download

FINETUNE_LR = 3e-4
SMALL_DATA = 1000        # fewer training images than this: flip + random resized crop by default


@dataclass
class FinetuneDefaults:
    settings: dict           # TrainConfig fields: optimizer, lr, flip, crop (empty when training from scratch)
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def finetune_defaults(model: str, data=None, *, pretrained: bool = True) -> FinetuneDefaults:
    """The settings a run of `model` (name or id) starts with when it fine-tunes ImageNet weights:
    AdamW at 3e-4, and for small data (< 1,000 images in `data`) horizontal flip + random resized
    crop (scale 0.6–1). Every one of them can be changed; from scratch there are none."""
    target = resolve_model(model)
    extra = target.extra or {}
    arch = get_architecture(extra.get("train_architecture") or target.architecture)
    weights = starting_weights(arch, model_args=extra.get("model_args") or None)
    coming = not extra.get("model_args") and active_download(arch.weights_repo) is not None
    if not pretrained or not (weights.pretrained or coming):
        return FinetuneDefaults({}, "from scratch: the usual defaults")
    settings = {"optimizer": "adamw", "lr": FINETUNE_LR}
    note = f"fine-tuning {weights.source or arch.weights_repo}: AdamW, learning rate {FINETUNE_LR:g}"
    if data is not None:
        pipeline = data if hasattr(data, "root") else resolve_data(data)
        images = check_data(pipeline.root).images
        if images < SMALL_DATA:
            settings.update(flip=True, crop=True)
            note += f"; {images} images (< {SMALL_DATA:,}): horizontal flip + random resized crop (scale 0.6–1)"
    return FinetuneDefaults(settings, note)
