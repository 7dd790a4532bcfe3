"""The preprocessing spec (`preprocess.json`) and safe image decoding.

One spec describes what transformers' image processors and timm's eval transforms do, so the
ONNX model sees the same pixels as the original: resize (shortest edge or exact size), center
crop, rescale, normalize, RGB, NCHW float32.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, UnreadableImageError
from .imagenet import IMAGENET_MEAN, IMAGENET_STD

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
# name → (rescale factor, mean, std): what the Add panel and `--mean-std` offer
MEAN_STD_PRESETS = {
    "imagenet": (1 / 255, IMAGENET_MEAN, IMAGENET_STD),
    "0.5": (1 / 255, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "none": (1 / 255, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),       # pixels in 0–1, not normalised
    "0-255": (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),          # raw float pixels 0–255 (WD taggers)
}
# crop: shortest side to size / crop_pct, then center crop; pad: pad to a white square, then resize;
# squash: resize to the exact size, ignoring the aspect ratio
RESIZE_MODES = ("crop", "pad", "squash")
DEFAULT_CROP_PCT = 0.875
# PIL's resample numbers, as transformers stores them in preprocessor_config.json
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


@dataclass
class PreprocessSpec:
    resize: dict                      # {"shortest_edge": N} or {"height": H, "width": W}
    crop: dict | None                 # {"height": H, "width": W}, or None for no crop
    interpolation: str = "bilinear"
    crop_rounding: str = "floor"      # transformers floors the crop offset; torchvision rounds it
    rescale_factor: float = 1 / 255
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    channel_order: str = "RGB"
    layout: str = "NCHW"
    multi_label: bool = False
    pad_color: int | None = None      # pad to a centered square of this gray (255: white) before resizing

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation {self.interpolation!r} is not one of {INTERPOLATIONS}")
        if not (set(self.resize) in ({"shortest_edge"}, {"height", "width"})):
            raise ConfigError(f"resize {self.resize!r} must be {{'shortest_edge': N}} or {{'height': H, 'width': W}}")
        if self.crop is not None and set(self.crop) != {"height", "width"}:
            raise ConfigError(f"crop {self.crop!r} must be {{'height': H, 'width': W}} or null")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(f"mean {self.mean} and std {self.std} need three values each, std > 0")
        if self.channel_order not in ("RGB", "BGR") or self.layout not in ("NCHW", "NHWC"):
            raise ConfigError(f"channel_order {self.channel_order!r} / layout {self.layout!r} not supported; "
                              "use RGB or BGR, NCHW or NHWC")
        if self.pad_color is not None and not (isinstance(self.pad_color, int) and 0 <= self.pad_color <= 255):
            raise ConfigError(f"pad_color {self.pad_color!r} must be a gray level 0–255 (255: white) or null")
        if self.pad_color is not None and ("height" not in self.resize or self.crop):
            raise ConfigError("pad_color pads to a square, then resizes to an exact size: it needs resize "
                              "{'height': H, 'width': W} and no crop")
        sizes = [v for d in (self.resize, self.crop or {}) for v in d.values()]
        if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8192 for v in sizes):
            raise ConfigError(f"resize {self.resize!r} / crop {self.crop!r}: sizes must be whole numbers 1–8192")

    @classmethod
    def from_options(cls, *, size: int | tuple[int, int], mean_std: str = "imagenet", channel_order: str = "RGB",
                     layout: str = "NCHW", resize_mode: str = "crop", interpolation: str = "bilinear",
                     crop_pct: float = DEFAULT_CROP_PCT, multi_label: bool = False) -> "PreprocessSpec":
        """The spec the Add panel's fields (and `imgai models add --size … --mean-std …`) describe."""
        if mean_std not in MEAN_STD_PRESETS:
            raise ConfigError(f"mean/std preset {mean_std!r} is not one of {', '.join(MEAN_STD_PRESETS)}")
        if resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize mode {resize_mode!r} is not one of {', '.join(RESIZE_MODES)}")
        if not 0.1 <= float(crop_pct) <= 1.0:
            raise ConfigError(f"crop_pct {crop_pct!r} must be in (0.1, 1], e.g. 0.875")
        h, w = (size, size) if isinstance(size, int) else size
        scale, mean, std = MEAN_STD_PRESETS[mean_std]
        if resize_mode == "crop":
            sh, sw = math.floor(h / crop_pct), math.floor(w / crop_pct)
            resize = {"shortest_edge": sh} if h == w else {"height": sh, "width": sw}
            crop = {"height": h, "width": w}
        else:
            resize, crop = {"height": h, "width": w}, None
        return cls(resize=resize, crop=crop, interpolation=interpolation, crop_rounding="round",
                   rescale_factor=scale, mean=list(mean), std=list(std), channel_order=channel_order,
                   layout=layout, multi_label=multi_label, pad_color=255 if resize_mode == "pad" else None)

    @property
    def resize_mode(self) -> str:
        if self.pad_color is not None:
            return "pad"
        return "crop" if self.crop else "squash"

    @property
    def mean_std(self) -> str | None:
        """The preset name these values match, or None for custom ones."""
        for name, (scale, mean, std) in MEAN_STD_PRESETS.items():
            if (math.isclose(self.rescale_factor, scale) and all(map(math.isclose, self.mean, mean))
                    and all(map(math.isclose, self.std, std))):
                return name
        return None

    def describe(self) -> str:
        h, w = self.input_size
        return (f"{self.resize_mode} to {h}×{w} {self.interpolation}, {self.mean_std or 'custom'} mean/std, "
                f"{self.channel_order}, {self.layout}")

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the tensor the model gets."""
        if self.crop:
            return self.crop["height"], self.crop["width"]
        if "height" in self.resize:
            return self.resize["height"], self.resize["width"]
        n = self.resize["shortest_edge"]
        return n, n

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Path) -> "PreprocessSpec":
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid preprocess.json: {exc}") from exc

    # -- derive from a model's own config --------------------------------------------------

    @classmethod
    def from_transformers(cls, processor: dict, *, multi_label: bool = False) -> "PreprocessSpec":
        """From a transformers preprocessor_config.json (ConvNext/ResNet, EfficientNet, MobileNet)."""
        kind = processor.get("image_processor_type", "")
        size = processor.get("size", {"shortest_edge": 224})
        if isinstance(size, int):
            size = {"shortest_edge": size}
        interp = _PIL_RESAMPLE.get(processor.get("resample", 2), "bilinear")
        scale = processor.get("rescale_factor", 1 / 255) if processor.get("do_rescale", True) else 1.0
        mean = list(processor.get("image_mean", IMAGENET_MEAN))
        std = list(processor.get("image_std", IMAGENET_STD))
        if not processor.get("do_normalize", True):
            mean, std = [0.0] * 3, [1.0] * 3
        crop = None
        if kind.startswith("ConvNext"):
            edge = size["shortest_edge"]
            if edge < 384:
                crop_pct = processor.get("crop_pct", 224 / 256)
                resize = {"shortest_edge": int(edge / crop_pct)}
                crop = {"height": edge, "width": edge}
            else:
                resize = {"height": edge, "width": edge}
        else:
            resize = dict(size)
            if processor.get("do_center_crop", kind.startswith("MobileNet")):
                cs = processor.get("crop_size", {"height": 224, "width": 224})
                crop = {"height": cs["height"], "width": cs["width"]} if isinstance(cs, dict) else {"height": cs, "width": cs}
        if kind.startswith("EfficientNet"):
            if processor.get("rescale_offset"):
                mean = [m + 1.0 for m in mean]   # x*s - 1 - m  ==  x*s - (m + 1)
            if processor.get("include_top", True):
                std = [s * s for s in std]       # a second normalize by std, mean 0
        return cls(resize=resize, crop=crop, interpolation=interp, crop_rounding="floor",
                   rescale_factor=scale, mean=mean, std=std, multi_label=multi_label)

    @classmethod
    def from_timm(cls, cfg: dict) -> "PreprocessSpec":
        """From a timm pretrained_cfg (input_size, interpolation, crop_pct, mean, std)."""
        _, h, w = cfg.get("input_size", (3, 224, 224))
        crop_pct = cfg.get("crop_pct", 0.875) or 1.0
        mode = cfg.get("crop_mode", "center")
        if mode not in ("center", None):
            raise ConfigError(f"timm crop_mode {mode!r} is not supported; only 'center'")
        sh, sw = math.floor(h / crop_pct), math.floor(w / crop_pct)
        resize = {"shortest_edge": sh} if sh == sw else {"height": sh, "width": sw}
        return cls(resize=resize, crop={"height": h, "width": w}, interpolation=cfg.get("interpolation", "bicubic"),
                   crop_rounding="round", rescale_factor=1 / 255, mean=list(cfg.get("mean", IMAGENET_MEAN)),
                   std=list(cfg.get("std", IMAGENET_STD)))

    # -- apply -----------------------------------------------------------------------------

    def __call__(self, image) -> np.ndarray:
        """PIL RGB image → float32 array (C, H, W) (or (H, W, C) for NHWC)."""
        from PIL import Image

        resample = getattr(Image.Resampling, self.interpolation.upper())
        if self.pad_color is not None:
            image = pad_square(image, self.pad_color)
        w, h = image.size
        if "shortest_edge" in self.resize:
            edge = self.resize["shortest_edge"]
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = edge, int(edge * long / short)
            size = (new_short, new_long) if w <= h else (new_long, new_short)
        else:
            size = (self.resize["width"], self.resize["height"])
        if size != (w, h):
            image = image.resize(size, resample=resample, reducing_gap=None)
        arr = np.asarray(image, dtype=np.float32)
        if self.crop:
            ch, cw = self.crop["height"], self.crop["width"]
            H, W = arr.shape[:2]
            if self.crop_rounding == "round":
                top, left = int(round((H - ch) / 2.0)), int(round((W - cw) / 2.0))
            else:
                top, left = (H - ch) // 2, (W - cw) // 2
            if top < 0 or left < 0:   # smaller than the crop: pad with zeros, as both libraries do
                pad = np.zeros((max(H, ch), max(W, cw), 3), np.float32)
                pt, pl = max(0, -top), max(0, -left)
                pad[pt:pt + H, pl:pl + W] = arr
                arr, top, left = pad, max(top, 0), max(left, 0)
            arr = arr[top:top + ch, left:left + cw]
        arr = arr * np.float32(self.rescale_factor)
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.channel_order == "BGR":
            arr = arr[..., ::-1]
        if self.layout == "NCHW":
            arr = arr.transpose(2, 0, 1)
        return np.ascontiguousarray(arr, dtype=np.float32)


def pad_square(image, gray: int):
    """The image centered on a square of `gray` (left/top offsets floored, as the WD taggers do)."""
    from PIL import Image

    w, h = image.size
    side = max(w, h)
    if w == h:
        return image
    canvas = Image.new("RGB", (side, side), (gray, gray, gray))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def decode_image(path_or_file):
    """Open an untrusted image as RGB: EXIF orientation applied; grayscale, palette, RGBA, CMYK and
    16-bit converted; a decompression bomb refused. Raises UnreadableImageError with the reason."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path_or_file) as im:
                im = ImageOps.exif_transpose(im)
                im.load()
                return _to_rgb(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImageError(f"refused: too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImageError("not an image (or a format Pillow cannot read)") from exc
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise UnreadableImageError(f"cannot read: {exc.strerror or exc}") from exc
    except (OSError, SyntaxError) as exc:
        raise UnreadableImageError(f"damaged or truncated image: {exc}") from exc


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im
