"""ImageNet-1k class names, offline: torchvision ships them in its weights metadata."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
