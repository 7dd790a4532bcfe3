"""Preprocessing parity cases: each family's own processor next to imgai's spec, on real photos.

Shared by tests/test_preprocess_parity.py (asserts) and bench/preprocess_parity.py (prints the
max |Δ| per family side by side). Three kinds of case:
- PROCESSORS: a transformers image processor (slow and fast) at its real default sizes, saved the
  way the Hub serves it; imgai reads the saved preprocessor_config.json. Compared tensor to tensor.
- MODELS: a tiny random transformers classifier of the family saved in the Hub's format; scores of
  transformers' own `pipeline("image-classification")` vs the model's scores on imgai's tensor.
- TIMM: a timm pretrained_cfg (timm's own for real architectures, plus every crop mode);
  `resolve_data_config` + `create_transform` vs imgai's spec, tensor to tensor, and for a tiny
  model of the family the scores too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = ["cat", "dog", "bird"]


def photo_paths(folder: Path) -> dict[str, Path]:
    """Real photos from scikit-image as JPEG: a landscape cat, a portrait (rotated) coffee cup."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"chelsea": data.chelsea(), "coffee_portrait": np.ascontiguousarray(np.rot90(data.coffee()))}
    paths = {}
    for name, arr in arrays.items():
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(arr).save(paths[name], quality=95)
    return paths


# name → (processor class, its keyword arguments); the defaults are the class's own (what the Hub's
# checkpoints of the family carry), a few at the sizes their common checkpoints use
PROCESSORS: dict[str, tuple[str, dict]] = {
    "ViT": ("ViTImageProcessor", {}),
    "ViT fast": ("ViTImageProcessorFast", {}),
    "DeiT": ("DeiTImageProcessor", {}),
    "DeiT fast": ("DeiTImageProcessorFast", {}),
    "BEiT": ("BeitImageProcessor", {}),
    "ConvNeXt 224 (crop_pct)": ("ConvNextImageProcessor", {"size": {"shortest_edge": 224}}),
    "ConvNeXt 384 (squash)": ("ConvNextImageProcessor", {}),
    "ConvNeXt fast 224": ("ConvNextImageProcessorFast", {"size": {"shortest_edge": 224}}),
    "DINOv2 (BiT processor)": ("BitImageProcessor", {"size": {"shortest_edge": 256}}),
    "BiT fast": ("BitImageProcessorFast", {}),
    "CLIP": ("CLIPImageProcessor", {}),
    "CLIP fast": ("CLIPImageProcessorFast", {}),
    "SigLIP": ("SiglipImageProcessor", {}),
    "SigLIP fast": ("SiglipImageProcessorFast", {}),
    "LeViT": ("LevitImageProcessor", {}),
    "PoolFormer": ("PoolFormerImageProcessor", {}),
    "MobileViT": ("MobileViTImageProcessor", {}),
    "MobileNetV2": ("MobileNetV2ImageProcessor", {}),
    "EfficientNet": ("EfficientNetImageProcessor", {"size": {"height": 224, "width": 224}}),
}

# an old Hub config, verbatim in the form google/vit-base-patch16-224 still serves it
LEGACY_VIT = {"do_normalize": True, "do_resize": True, "feature_extractor_type": "ViTFeatureExtractor",
              "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 224}


def processor_folder(name: str, folder: Path) -> Path:
    """The processor of case `name` saved as preprocessor_config.json (LEGACY_VIT written as is)."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    if name == "ViT (legacy feature extractor)":
        (folder / "preprocessor_config.json").write_text(json.dumps(LEGACY_VIT))
    else:
        cls, kwargs = PROCESSORS[name]
        getattr(transformers, cls)(**kwargs).save_pretrained(folder)
    return folder


def processor_delta(folder: Path, photo: Path) -> float:
    """max |Δ| between transformers' processor (as AutoImageProcessor loads the folder) and imgai's spec."""
    from transformers import AutoImageProcessor

    from imgai.classify.load import read_json
    from imgai.classify.preprocess import PreprocessSpec, decode_image

    spec = PreprocessSpec.from_transformers(read_json(folder / "preprocessor_config.json"))
    theirs = AutoImageProcessor.from_pretrained(str(folder))(images=decode_image(photo), return_tensors="pt")
    theirs = theirs["pixel_values"][0].numpy()
    ours = spec(decode_image(photo))
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max())


# -- tiny models of each transformers family --------------------------------------------------

def _labels() -> dict:
    return {"num_labels": 3, "id2label": dict(enumerate(LABELS)), "label2id": {l: i for i, l in enumerate(LABELS)}}


def _vit_like(**extra) -> dict:
    return {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 64, **extra}


def _tiny(family: str):
    """(model, processor) of `family`, tiny and seeded."""
    import transformers as tf

    if family == "ViT":
        return tf.ViTForImageClassification(tf.ViTConfig(**_vit_like(), **_labels())), \
            tf.ViTImageProcessor(size={"height": 32, "width": 32})
    if family == "ViT fast":
        return tf.ViTForImageClassification(tf.ViTConfig(**_vit_like(), **_labels())), \
            tf.ViTImageProcessorFast(size={"height": 32, "width": 32})
    if family == "DeiT":
        return tf.DeiTForImageClassification(tf.DeiTConfig(**_vit_like(), **_labels())), \
            tf.DeiTImageProcessor(size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32})
    if family == "BEiT":
        return tf.BeitForImageClassification(tf.BeitConfig(**_vit_like(use_mean_pooling=True), **_labels())), \
            tf.BeitImageProcessor(size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32})
    if family == "ConvNeXt":
        config = tf.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], **_labels())
        return tf.ConvNextForImageClassification(config), \
            tf.ConvNextImageProcessor(size={"shortest_edge": 48}, crop_pct=0.875)
    if family == "ConvNeXt fast":
        config = tf.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], **_labels())
        return tf.ConvNextForImageClassification(config), \
            tf.ConvNextImageProcessorFast(size={"shortest_edge": 48}, crop_pct=0.875)
    if family == "DINOv2":
        return tf.Dinov2ForImageClassification(tf.Dinov2Config(**_vit_like(mlp_ratio=2), **_labels())), \
            tf.BitImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32})
    if family == "BiT":
        config = tf.BitConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_groups=2, **_labels())
        return tf.BitForImageClassification(config), \
            tf.BitImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32})
    if family == "CLIP":
        config = tf.CLIPConfig(text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                            "intermediate_size": 32, "vocab_size": 64},
                               vision_config=_vit_like(), **_labels())
        return tf.CLIPForImageClassification(config), \
            tf.CLIPImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32})
    if family == "SigLIP":
        config = tf.SiglipConfig(text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                              "intermediate_size": 32, "vocab_size": 64},
                                 vision_config=_vit_like(), **_labels())
        return tf.SiglipForImageClassification(config), tf.SiglipImageProcessor(size={"height": 32, "width": 32})
    raise ValueError(family)


MODELS = ("ViT", "ViT fast", "DeiT", "BEiT", "ConvNeXt", "ConvNeXt fast", "DINOv2", "BiT", "CLIP", "SigLIP")


def _other_photos(size: int):
    """Two more real photos (not the compared ones) as a (2, 3, size, size) tensor in [-1, 1]."""
    import torch
    from PIL import Image
    from skimage import data

    arrays = [np.asarray(Image.fromarray(a).resize((size, size))) for a in (data.astronaut(), data.rocket())]
    return torch.from_numpy(np.stack(arrays).astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2).contiguous()


def _spread_head(head, logits) -> None:
    """Scale a head so its logits on real photos spread (std ~1.5): a random init's near-uniform
    (or saturated) scores would agree whatever the pixels, and prove nothing."""
    factor = 1.5 / max(float(logits.std()), 1e-6)
    head.weight.data.mul_(factor)
    head.bias.data.mul_(factor)


def _spread_logits(model, size: int) -> None:
    import torch

    head = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        _spread_head(head, model(pixel_values=_other_photos(size)).logits)


def model_folder(family: str, folder: Path) -> Path:
    """A tiny `family` classifier in the Hub's format: config.json, model.safetensors, preprocessor_config.json."""
    import torch

    torch.manual_seed(0)
    model, processor = _tiny(family)
    model.eval()
    crop = getattr(processor, "crop_size", None) or processor.size
    _spread_logits(model, crop.get("height") or crop["shortest_edge"])
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def model_delta(folder: Path, photo: Path) -> tuple[float, float]:
    """(max |Δscore| between transformers' pipeline and the model on imgai's tensor, score spread)."""
    import torch
    from transformers import AutoModelForImageClassification, pipeline

    from imgai.classify.load import read_json
    from imgai.classify.preprocess import PreprocessSpec, decode_image

    spec = PreprocessSpec.from_transformers(read_json(folder / "preprocessor_config.json"))
    model = AutoModelForImageClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        probs = model(pixel_values=torch.from_numpy(spec(decode_image(photo))[None])).logits.softmax(-1)[0]
    ours = {LABELS[i]: float(p) for i, p in enumerate(probs)}
    theirs = {r["label"]: r["score"] for r in pipeline("image-classification", model=str(folder), device="cpu")(
        str(photo), top_k=len(LABELS))}
    return max(abs(ours[k] - theirs[k]) for k in LABELS), max(ours.values()) - min(ours.values())


# -- timm ---------------------------------------------------------------------------------------

# timm's own pretrained_cfg for these architectures (what the Hub's timm/<arch>.<tag> config.json holds)
TIMM_ARCHITECTURES = ("convnext_atto.d2_in1k", "vit_tiny_patch16_224.augreg_in21k_ft_in1k",
                      "efficientformerv2_s0.snap_dist_in1k", "fastvit_t8.apple_in1k", "deit_tiny_patch16_224.fb_in1k",
                      "regnety_002.pycls_in1k", "swin_tiny_patch4_window7_224.ms_in1k",
                      "vit_base_patch16_clip_224.openai_ft_in1k")
# every crop mode, a non-square input and a test-time size
TIMM_CFGS: dict[str, dict] = {
    "center, non-square": {"input_size": (3, 192, 256), "crop_pct": 0.9, "interpolation": "bilinear"},
    "squash": {"input_size": (3, 224, 224), "crop_pct": 0.95, "crop_mode": "squash", "interpolation": "bicubic"},
    "border": {"input_size": (3, 224, 224), "crop_pct": 0.9, "crop_mode": "border", "interpolation": "bicubic",
               "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    "test size": {"input_size": (3, 224, 224), "crop_pct": 0.875, "test_input_size": (3, 288, 288),
                  "test_crop_pct": 1.0},
}


def timm_cfg(name: str) -> dict:
    import timm

    if name in TIMM_CFGS:
        return dict(TIMM_CFGS[name])
    return timm.models.get_pretrained_cfg(name).to_dict()


def timm_tensors(cfg: dict, photo: Path) -> tuple[np.ndarray, np.ndarray]:
    """(imgai's tensor, timm's eval transform's tensor) for a pretrained_cfg."""
    import timm.data

    from imgai.classify.preprocess import PreprocessSpec, decode_image

    use_test_size = "test_input_size" in cfg
    config = timm.data.resolve_data_config({}, pretrained_cfg=cfg, use_test_size=use_test_size)
    theirs = timm.data.create_transform(**config)(decode_image(photo)).numpy()
    ours = PreprocessSpec.from_timm(cfg, use_test_size=use_test_size)(decode_image(photo))
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return ours, theirs


# tiny timm models for score parity: (architecture, model_args, pretrained_cfg at a small size)
TIMM_MODELS = {
    "convnext_atto": ("convnext_atto", {}, {"input_size": (3, 64, 64), "crop_pct": 0.95, "interpolation": "bicubic"}),
    "vit_tiny_patch16_224": ("vit_tiny_patch16_224", {"img_size": 64, "depth": 2},
                             {"input_size": (3, 64, 64), "crop_pct": 0.9, "crop_mode": "squash",
                              "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}),
}


def timm_model_delta(key: str, photo: Path) -> tuple[float, float]:
    """(max |Δscore| of a tiny timm model on imgai's tensor vs timm's, score spread)."""
    import timm
    import torch

    arch, args, cfg = TIMM_MODELS[key]
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=3, **args).eval()
    with torch.no_grad():
        _spread_head(model.get_classifier(), model(_other_photos(cfg["input_size"][1])))
        ours, theirs = (torch.from_numpy(t)[None] for t in timm_tensors(cfg, photo))
        p_ours, p_theirs = model(ours).softmax(-1)[0], model(theirs).softmax(-1)[0]
    return float((p_ours - p_theirs).abs().max()), float(p_ours.max() - p_ours.min())
