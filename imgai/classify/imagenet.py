"""ImageNet-1k: the normalisation every ImageNet-trained classifier here expects (the default of a
preprocessing spec, of timm and transformers configs that do not say, and of training), and the
class names, offline (torchvision ships them in its weights metadata)."""

from __future__ import annotations

import functools

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
