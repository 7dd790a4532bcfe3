"""Tiny, seeded models built in code for every supported family, and real photos.

Like diffusers' `get_dummy_components`: small enough to convert in a second, real enough to
exercise the same loading, export and validation code as a full-size model. BatchNorm running
statistics are set to sensible values so the logits are not all ~0 (random BN stats make
parity checks meaningless).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

LABELS = ["cat", "dog", "bird"]


def _calibrate_bn(model) -> None:
    """Give BatchNorm layers non-trivial statistics by running a few seeded batches in train mode."""
    import torch

    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            if m.affine:   # some inits draw BN scales ~N(0, 0.02), which silences the network
                m.weight.data = 1 + 0.1 * torch.randn(m.weight.shape, generator=gen)
                m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=gen)
            m.momentum = None   # cumulative average: running stats = the data's own statistics
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, 3, 64, 64, generator=gen))
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.1
    model.eval()


def _hf_labels():
    return {"id2label": {i: l for i, l in enumerate(LABELS)}, "label2id": {l: i for i, l in enumerate(LABELS)}}


def make_transformers_model(folder: Path, model_type: str) -> Path:
    """A tiny transformers image classifier with safetensors weights and a preprocessor config."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if model_type == "resnet":
        config = tf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=3, **_hf_labels())
        model = tf.ResNetForImageClassification(config)
        processor = tf.ConvNextImageProcessor(size={"shortest_edge": 64}, crop_pct=0.875)
    elif model_type == "efficientnet":
        config = tf.EfficientNetConfig(image_size=64, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=128,
                                       num_labels=3, **_hf_labels())
        model = tf.EfficientNetForImageClassification(config)
        processor = tf.EfficientNetImageProcessor(size={"height": 64, "width": 64})
    elif model_type == "mobilenet_v2":
        config = tf.MobileNetV2Config(image_size=64, depth_multiplier=0.35, num_labels=3, **_hf_labels())
        model = tf.MobileNetV2ForImageClassification(config)
        processor = tf.MobileNetV2ImageProcessor(size={"shortest_edge": 72}, crop_size={"height": 64, "width": 64})
    else:
        raise ValueError(model_type)
    _calibrate_bn(model)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def make_timm_model(folder: Path, architecture: str, **model_args) -> Path:
    """A tiny timm model in the Hub's timm layout: config.json + model.safetensors."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(architecture, pretrained=False, num_classes=3, **model_args)
    _calibrate_bn(model)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    cfg = model.pretrained_cfg
    (folder / "config.json").write_text(json.dumps({
        "architecture": architecture, "num_classes": 3, "label_names": LABELS, "model_args": model_args,
        "pretrained_cfg": {"input_size": [3, 64, 64], "interpolation": cfg.get("interpolation", "bicubic"),
                           "crop_pct": 0.875, "crop_mode": "center", "mean": list(cfg["mean"]),
                           "std": list(cfg["std"])}}))
    return folder


# One entry per supported family and library: (library, architecture, builder)
TINY_MODELS = {
    "transformers-resnet": lambda d: make_transformers_model(d, "resnet"),
    "transformers-efficientnet": lambda d: make_transformers_model(d, "efficientnet"),
    "transformers-mobilenet_v2": lambda d: make_transformers_model(d, "mobilenet_v2"),
    "timm-resnet": lambda d: make_timm_model(d, "resnet18", layers=[1, 1, 1, 1]),
    "timm-efficientnet": lambda d: make_timm_model(d, "efficientnet_b0", drop_rate=0.0),
    "timm-mobilenetv3": lambda d: make_timm_model(d, "mobilenetv3_small_050"),
}


@pytest.fixture(scope="session")
def tiny_model_cache(tmp_path_factory):
    """Build each tiny model once per session; tests copy from here."""
    root = tmp_path_factory.mktemp("tiny_models")
    built = {}

    def get(key: str) -> Path:
        if key not in built:
            built[key] = TINY_MODELS[key](root / key)
        return built[key]

    return get


def photo(name: str, folder: Path) -> Path:
    """A real photo from scikit-image (chelsea = a cat, coffee = an espresso) saved as JPEG."""
    from PIL import Image
    from skimage import data

    path = folder / f"{name}.jpg"
    Image.fromarray(getattr(data, name)()).save(path, quality=95)
    return path


@pytest.fixture
def photos(tmp_path) -> dict[str, Path]:
    d = tmp_path / "photos"
    d.mkdir()
    return {name: photo(name, d) for name in ("chelsea", "coffee")}


def random_image(path: Path, *, size=(80, 60), seed=0, mode="RGB") -> Path:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path
