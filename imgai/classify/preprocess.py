"""The preprocessing spec (`preprocess.json`) and safe image decoding.

One spec describes what transformers' image processors and timm's eval transforms do, so the
ONNX model sees the same pixels as the original: resize (shortest edge, exact size, or keeping the
ratio to cover or fit a box), center crop (padding with a fill colour where the image is
smaller), rescale, normalize, RGB, NCHW float32. The resize runs on PIL's filters (transformers'
slow processors, timm) or torchvision's antialiased resize of uint8 tensors (transformers'
`…Fast` processors). Reading a model's own files into a spec: imgai/classify/hf_processors.py.
"""

from __future__ import annotations

import hashlib
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
# pil: PIL's Image.resize (transformers' slow processors, timm); torch: torchvision's antialiased
# resize of a uint8 tensor (transformers' …Fast processors; PIL's filter where torch is not installed)
RESIZE_BACKENDS = ("pil", "torch")
# with resize {"height", "width"}: scale by one factor so the image covers the box (shortest) or fits
# in it (longest), as timm's ResizeKeepRatio does
KEEP_RATIOS = ("shortest", "longest")


@dataclass
class PreprocessSpec:
    resize: dict                      # {"shortest_edge": N} or {"height": H, "width": W}
    crop: dict | None                 # {"height": H, "width": W}, or None for no crop
    interpolation: str = "bilinear"
    crop_rounding: str = "floor"      # transformers floors the crop offset; torchvision (timm) rounds it
    rescale_factor: float = 1 / 255
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    channel_order: str = "RGB"
    layout: str = "NCHW"
    multi_label: bool = False
    pad_color: int | None = None      # pad to a centered square of this gray (255: white) before resizing
    resize_backend: str = "pil"       # one of RESIZE_BACKENDS
    keep_ratio: str | None = None     # one of KEEP_RATIOS, or None: resize {"height", "width"} squashes
    crop_fill: list[int] | None = None  # RGB 0–255 where the crop is larger than the image (None: black)

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
        if self.crop_rounding not in ("floor", "round"):
            raise ConfigError(f"crop_rounding {self.crop_rounding!r} must be 'floor' (transformers) or 'round' "
                              "(torchvision, timm)")
        if self.resize_backend not in RESIZE_BACKENDS:
            raise ConfigError(f"resize_backend {self.resize_backend!r} is not one of {', '.join(RESIZE_BACKENDS)}")
        if self.keep_ratio is not None and (self.keep_ratio not in KEEP_RATIOS or "height" not in self.resize
                                            or not self.crop):
            raise ConfigError(f"keep_ratio {self.keep_ratio!r} must be one of {', '.join(KEEP_RATIOS)} (or null), "
                              "with resize {'height': H, 'width': W} and a crop")
        if self.crop_fill is not None and (len(self.crop_fill) != 3 or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in self.crop_fill)):
            raise ConfigError(f"crop_fill {self.crop_fill!r} must be three whole numbers 0–255 (RGB) or null")
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
        """From a transformers preprocessor_config.json, as its image processor applies it
        (hf_processors.processor_args)."""
        from .hf_processors import processor_args

        return cls(**processor_args(processor), multi_label=multi_label)

    @classmethod
    def from_timm(cls, cfg: dict, *, use_test_size: bool = False) -> "PreprocessSpec":
        """From a timm pretrained_cfg, as timm's eval transform applies it (hf_processors.timm_args)."""
        from .hf_processors import timm_args

        return cls(**timm_args(cfg, use_test_size=use_test_size))

    # -- apply -----------------------------------------------------------------------------

    def __call__(self, image) -> np.ndarray:
        """PIL RGB image → float32 array (C, H, W) (or (H, W, C) for NHWC)."""
        if self.pad_color is not None:
            image = pad_square(image, self.pad_color)
        w, h = image.size
        size = self.resized_size(w, h)
        arr = self._resize(image, size) if size != (w, h) else np.asarray(image)
        if self.crop:
            arr = self._center_crop(arr)
        arr = arr.astype(np.float32) * np.float32(self.rescale_factor)
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.channel_order == "BGR":
            arr = arr[..., ::-1]
        if self.layout == "NCHW":
            arr = arr.transpose(2, 0, 1)
        return np.ascontiguousarray(arr, dtype=np.float32)

    def resized_size(self, w: int, h: int) -> tuple[int, int]:
        """(width, height) an image of w×h is resized to."""
        if "shortest_edge" in self.resize:   # transformers' get_resize_output_image_size, torchvision's Resize(int)
            edge = self.resize["shortest_edge"]
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = edge, int(edge * long / short)
            return (new_short, new_long) if w <= h else (new_long, new_short)
        th, tw = self.resize["height"], self.resize["width"]
        if self.keep_ratio is None:
            return tw, th
        ratio_h, ratio_w = h / th, w / tw                 # timm's ResizeKeepRatio
        ratio = max(ratio_h, ratio_w) if self.keep_ratio == "longest" else min(ratio_h, ratio_w)
        return round(w / ratio), round(h / ratio)

    def _resize(self, image, size: tuple[int, int]) -> np.ndarray:
        if self.resize_backend == "torch":
            try:
                import torch
                from torchvision.transforms import InterpolationMode
                from torchvision.transforms.v2 import functional as F
            except ImportError:   # a tag-only install: PIL's filter of the same name (at most one level apart)
                pass
            else:
                tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
                out = F.resize(tensor[None], [size[1], size[0]], antialias=True,
                               interpolation=InterpolationMode[self.interpolation.upper()])
                return out[0].permute(1, 2, 0).numpy()
        from PIL import Image

        resample = getattr(Image.Resampling, self.interpolation.upper())
        return np.asarray(image.resize(size, resample=resample, reducing_gap=None))

    def _center_crop(self, arr: np.ndarray) -> np.ndarray:
        """Center crop; where the image is smaller, pad with crop_fill first. transformers' slow
        processors floor the offset and put the extra padding pixel first; torchvision (timm, the fast
        processors) puts it last, and rounds the offset (timm) or floors it (transformers)."""
        ch, cw = self.crop["height"], self.crop["width"]
        H, W = arr.shape[:2]
        if ch > H or cw > W:
            extra_first = self.crop_rounding == "floor" and self.resize_backend == "pil"
            split = (lambda d: (d + 1) // 2) if extra_first else (lambda d: d // 2)   # noqa: E731
            pt, pl = split(max(ch - H, 0)), split(max(cw - W, 0))
            fill = np.asarray(self.crop_fill or (0, 0, 0), dtype=arr.dtype)
            padded = np.empty((max(H, ch), max(W, cw), arr.shape[2]), dtype=arr.dtype)
            padded[...] = fill
            padded[pt:pt + H, pl:pl + W] = arr
            arr, H, W = padded, padded.shape[0], padded.shape[1]
        if self.crop_rounding == "round":
            top, left = int(round((H - ch) / 2.0)), int(round((W - cw) / 2.0))
        else:
            top, left = (H - ch) // 2, (W - cw) // 2
        return arr[top:top + ch, left:left + cw]


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


def content_hasher():
    """The hash a file's content is known by (the photo library's key for moved and changed files):
    blake2b-128 of its bytes. `.update()` it with the bytes, then `.hexdigest()`."""
    return hashlib.blake2b(digest_size=16)


def read_image_file(path) -> bytes:
    """A file's bytes, for `decode_image(io.BytesIO(data))` and `content_hasher()` to share one
    read; a file that cannot be read raises UnreadableImageError as `decode_image` does."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UnreadableImageError(f"cannot read: {exc.strerror or exc}") from exc


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
