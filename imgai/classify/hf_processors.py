"""Read a model's own preprocessing files into a PreprocessSpec, as its library would apply them.

transformers: `preprocessor_config.json` of an image processor (or an old feature extractor), slow
or `…Fast`. Each processor type resizes in its own way (ViT and SigLIP squash to a size, DeiT
and BEiT squash then center crop, BiT/DINOv2/CLIP/MobileNet take the shortest edge then center
crop, ConvNeXt scales by `crop_pct` below 384 and squashes from 384 up, LeViT by 256/224,
PoolFormer by `crop_pct`); slow processors resize with PIL, fast ones with torchvision's
antialiased resize on uint8 tensors (the spec's `resize_backend`). A key that would change the
pixels in a way imgai does not reproduce is refused by name, never silently ignored.

timm: a `pretrained_cfg` resolved as `timm.data.resolve_data_config` does (input size,
interpolation, mean/std, crop_pct, crop_mode center/squash/border; `use_test_size` takes
`test_input_size`/`test_crop_pct`), turned into the steps of `transforms_imagenet_eval`.

Each function returns PreprocessSpec's keyword arguments (PreprocessSpec.from_transformers and
.from_timm build the spec, which validates them). No library is imported here: a tag-only
install reads these files too.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from .imagenet import IMAGENET_MEAN, IMAGENET_STD

# PIL's resample numbers, as transformers stores them in preprocessor_config.json
PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
STANDARD_MEAN_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# Each processor type's own defaults (its __init__), for keys an older or hand-written config leaves
# out: whether an int `size` means a square (default_to_square), then the values themselves.
def _defaults(square: bool, size, resample: int, mean, std, crop=None, **extra) -> dict:
    d = {"square": square, "size": size, "resample": resample, "image_mean": list(mean), "image_std": list(std),
         "do_center_crop": crop is not None, "crop_size": crop}
    d.update(extra)
    return d


_HW = lambda n: {"height": n, "width": n}          # noqa: E731
_SE = lambda n: {"shortest_edge": n}               # noqa: E731
PROCESSORS: dict[str, dict] = {
    "ViT": _defaults(True, _HW(224), 2, STANDARD_MEAN_STD, STANDARD_MEAN_STD),
    "DeiT": _defaults(True, _HW(256), 3, STANDARD_MEAN_STD, STANDARD_MEAN_STD, crop=_HW(224)),
    "Beit": _defaults(True, _HW(256), 3, STANDARD_MEAN_STD, STANDARD_MEAN_STD, crop=_HW(224)),
    "Data2VecVision": _defaults(True, _HW(256), 3, STANDARD_MEAN_STD, STANDARD_MEAN_STD, crop=_HW(224)),
    "Siglip": _defaults(True, _HW(224), 3, STANDARD_MEAN_STD, STANDARD_MEAN_STD),
    "Pvt": _defaults(True, _HW(224), 2, IMAGENET_MEAN, IMAGENET_STD),
    "EfficientFormer": _defaults(True, _HW(224), 3, IMAGENET_MEAN, IMAGENET_STD, crop=_HW(224)),
    "EfficientNet": _defaults(True, _HW(346), 0, STANDARD_MEAN_STD, STANDARD_MEAN_STD, do_center_crop=False,
                              crop_size=_HW(289)),
    "Bit": _defaults(False, _SE(224), 3, CLIP_MEAN, CLIP_STD, crop=_HW(224)),
    "CLIP": _defaults(False, _SE(224), 3, CLIP_MEAN, CLIP_STD, crop=_HW(224)),
    "ViTHybrid": _defaults(False, _SE(224), 3, CLIP_MEAN, CLIP_STD, crop=_HW(224)),
    "ConvNext": _defaults(False, _SE(384), 2, STANDARD_MEAN_STD, STANDARD_MEAN_STD, crop_pct=224 / 256),
    "MobileNetV1": _defaults(False, _SE(256), 2, STANDARD_MEAN_STD, STANDARD_MEAN_STD, crop=_HW(224)),
    "MobileNetV2": _defaults(False, _SE(256), 2, STANDARD_MEAN_STD, STANDARD_MEAN_STD, crop=_HW(224)),
    "Levit": _defaults(False, _SE(224), 3, IMAGENET_MEAN, IMAGENET_STD, crop=_HW(224)),
    "PoolFormer": _defaults(False, _SE(224), 3, IMAGENET_MEAN, IMAGENET_STD, crop=_HW(224), crop_pct=0.9),
    "MobileViT": _defaults(False, _SE(224), 2, (0.0,) * 3, (1.0,) * 3, crop=_HW(256), do_normalize=False,
                           do_flip_channel_order=True),
}
# keys that would change the pixels in ways imgai does not reproduce (when switched on)
_UNSUPPORTED_KEYS = ("do_pad", "keep_aspect_ratio", "size_divisor", "ensure_multiple_of", "do_image_splitting",
                     "do_color_quantize", "max_num_patches")


def processor_kind(processor: dict) -> tuple[str, bool]:
    """('ViT', fast?) from `image_processor_type` (or an old `feature_extractor_type`)."""
    name = processor.get("image_processor_type") or processor.get("feature_extractor_type") or ""
    fast = name.endswith("Fast")
    name = name[:-4] if fast else name
    for suffix in ("ImageProcessor", "FeatureExtractor"):
        if name.endswith(suffix):
            return name[: -len(suffix)], fast
    return name, fast


def _size_dict(value, *, square: bool, what: str) -> dict:
    if isinstance(value, int) and not isinstance(value, bool):
        return _HW(value) if square else _SE(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return {"height": int(value[0]), "width": int(value[1])}
    if isinstance(value, dict):
        if "shortest_edge" in value and "longest_edge" not in value:
            return _SE(int(value["shortest_edge"]))
        if {"height", "width"} <= set(value):
            return {"height": int(value["height"]), "width": int(value["width"])}
    raise ConfigError(f"preprocessor_config.json {what} {value!r} is not one imgai reproduces; it takes "
                      "{'shortest_edge': N} or {'height': H, 'width': W}")


def processor_args(processor: dict) -> dict:
    """The spec a transformers image processor config describes (see the module's docstring)."""
    kind, fast = processor_kind(processor)
    defaults = PROCESSORS.get(kind, PROCESSORS["ViT"] if "size" in processor else None)
    if defaults is None:
        raise ConfigError(f"preprocessor_config.json names image processor {kind or 'none'!r} and no size; "
                          f"imgai reads {', '.join(k + 'ImageProcessor' for k in PROCESSORS)}")
    bad = [k for k in _UNSUPPORTED_KEYS if processor.get(k)]
    if bad:
        raise ConfigError(f"preprocessor_config.json sets {', '.join(f'{k}={processor[k]!r}' for k in bad)}; imgai "
                          "reproduces resize, center crop, rescale and normalize only: this model needs its own "
                          "processor")
    get = lambda key: processor[key] if processor.get(key) is not None else defaults.get(key)   # noqa: E731
    if processor.get("do_resize", True) is False:
        raise ConfigError("preprocessor_config.json has do_resize false: the model's input size would follow "
                          "each image; imgai needs a fixed size (set do_resize true with a size)")
    size = _size_dict(get("size"), square=defaults["square"], what="size")
    resample = get("resample")
    interpolation = PIL_RESAMPLE.get(int(resample) if resample is not None else 2, "bilinear")
    scale = float(get("rescale_factor") or 1 / 255) if processor.get("do_rescale", True) else 1.0
    do_normalize = processor.get("do_normalize", defaults.get("do_normalize", True))
    mean, std = list(get("image_mean")), list(get("image_std"))
    if not do_normalize:
        mean, std = [0.0] * 3, [1.0] * 3
    do_crop = processor.get("do_center_crop", defaults["do_center_crop"])
    crop = _size_dict(get("crop_size"), square=True, what="crop_size") if do_crop else None
    rounding = "floor"   # transformers floors the crop offset, slow and fast alike

    if kind == "ConvNext":
        edge = size.get("shortest_edge") or size["height"]
        if edge < 384:
            size, crop = _SE(int(edge / float(get("crop_pct")))), _HW(edge)
            rounding = "round" if fast else "floor"   # the fast one crops with torchvision's center_crop
        else:
            size, crop = _HW(edge), None
    elif kind == "Levit" and "shortest_edge" in size:
        size = _SE(int((256 / 224) * size["shortest_edge"]))
    elif kind == "PoolFormer" and get("crop_pct") is not None:
        pct = float(get("crop_pct"))
        if "shortest_edge" in size:
            size = _SE(int(size["shortest_edge"] / pct))
        elif size["height"] == size["width"]:
            size = _SE(int(math.floor(size["height"] / pct)))
        else:
            size = {"height": int(math.floor(size["height"] / pct)), "width": int(math.floor(size["width"] / pct))}
    elif kind == "EfficientNet":
        if processor.get("rescale_offset"):
            mean = [m + 1.0 for m in mean]   # x*s - 1 - m  ==  x*s - (m + 1)
        if processor.get("include_top", True):   # a second normalize, by image_std with mean 0
            std = [a * b for a, b in zip(std, get("image_std"))]
    channel_order = "BGR" if kind == "MobileViT" and get("do_flip_channel_order") else "RGB"
    return dict(resize=size, crop=crop, interpolation=interpolation, crop_rounding=rounding, rescale_factor=scale,
                mean=mean, std=std, channel_order=channel_order, resize_backend="torch" if fast else "pil")


def resolve_timm(cfg: dict, *, use_test_size: bool = False) -> dict:
    """What `timm.data.resolve_data_config` makes of a pretrained_cfg: input_size, interpolation,
    mean, std, crop_pct, crop_mode (timm's defaults where the cfg is silent)."""
    input_size = cfg.get("input_size") or (3, 224, 224)
    crop_pct = cfg.get("crop_pct")
    if use_test_size and cfg.get("test_input_size"):
        input_size = cfg["test_input_size"]
    if use_test_size and cfg.get("test_crop_pct"):
        crop_pct = cfg["test_crop_pct"]
    return {"input_size": tuple(input_size), "interpolation": cfg.get("interpolation") or "bicubic",
            "mean": tuple(cfg.get("mean") or IMAGENET_MEAN), "std": tuple(cfg.get("std") or IMAGENET_STD),
            "crop_pct": crop_pct or 0.875, "crop_mode": cfg.get("crop_mode") or "center"}


def timm_args(cfg: dict, *, use_test_size: bool = False) -> dict:
    """The spec of timm's eval transform (`transforms_imagenet_eval`) for a pretrained_cfg."""
    data = resolve_timm(cfg, use_test_size=use_test_size)
    _, h, w = data["input_size"]
    mode, pct = data["crop_mode"], float(data["crop_pct"])
    if cfg.get("crop_border_pixels"):
        raise ConfigError(f"timm crop_border_pixels={cfg['crop_border_pixels']!r} is not reproduced by imgai")
    sh, sw = math.floor(h / pct), math.floor(w / pct)
    keep_ratio, fill = None, None
    if mode == "squash":
        resize = {"height": sh, "width": sw}
    elif mode == "border":
        resize, keep_ratio = {"height": sh, "width": sw}, "longest"
        fill = [round(255 * v) for v in data["mean"]]
    elif mode == "center":
        resize = _SE(sh) if sh == sw else {"height": sh, "width": sw}
        keep_ratio = None if sh == sw else "shortest"
    else:
        raise ConfigError(f"timm crop_mode {mode!r} is not one of center, squash, border")
    interpolation = data["interpolation"]
    if interpolation not in PIL_RESAMPLE.values():
        raise ConfigError(f"timm interpolation {interpolation!r} is not one of {', '.join(PIL_RESAMPLE.values())}")
    return dict(resize=resize, crop=_HW(h) if h == w else {"height": h, "width": w}, interpolation=interpolation,
                crop_rounding="round", rescale_factor=1 / 255, mean=list(data["mean"]), std=list(data["std"]),
                keep_ratio=keep_ratio, crop_fill=fill)
