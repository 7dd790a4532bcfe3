"""Calibration images for INT8 quantization: where they come from, which are held back, their views.

Sources, in order: the folder the user gives; else the model's own training data when it was
trained here; else real photos shipped by scikit-image. Part of them is held back (never seen by
the calibrator) to measure the INT8 model against FP32. Each photo gives several views (itself,
its mirror, seeded crops), so a handful of photos still calibrate and check on many inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import ConfigError
from .preprocess import PreprocessSpec, decode_image

# scikit-image's bundled real photos (no download): some calibrate, the others are held back
BUILTIN_CALIBRATION = ("astronaut", "chelsea", "hubble_deep_field", "camera", "coins", "brick", "grass",
                       "gravel", "immunohistochemistry", "retina", "moon", "cell")
BUILTIN_HELD_BACK = ("coffee", "rocket", "stereo_motorcycle", "clock")
BUILTIN_PREFIX = "skimage:"
HOLD_BACK_EVERY = 4              # of a folder, every 4th image is held back for the comparison
MAX_IMAGES = 256                 # at most this many images are read from a folder
CALIBRATION_VIEWS = 4            # views per calibration image
VALIDATION_VIEWS = 16            # views per held-back image


@dataclass
class CalibrationSet:
    source: str                                      # what the images are, in words
    calibrate: list[str]                             # paths, or skimage:NAME
    held_back: list[str]
    skipped: list[str] = field(default_factory=list)  # "file: reason"

    def to_dict(self) -> dict:
        return asdict(self)


def _header_problem(path: Path) -> str | None:
    """A cheap check (the header only) before a job is queued."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
        return None
    except UnidentifiedImageError:
        return "not an image (or a format Pillow cannot read)"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"damaged image: {exc}"


def _split(items: list[str]) -> tuple[list[str], list[str]]:
    held = [p for i, p in enumerate(items) if i % HOLD_BACK_EVERY == HOLD_BACK_EVERY - 1]
    if not held:                                     # 2 or 3 images: the last one is held back
        held = items[-1:]
    return [p for p in items if p not in held], held


def from_folder(folder: str | Path, *, what: str | None = None) -> CalibrationSet:
    """The images of a folder (recursively, sorted); files that are not images are skipped with a note.
    Refused when the folder is missing, unreadable, or holds fewer than two readable images."""
    from .tag import IMAGE_SUFFIXES

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"calibration folder {folder} does not exist or is not a folder; give a folder of "
                          "photos like the ones the model will tag")
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:
        raise ConfigError(f"cannot read calibration folder {folder}: {exc.strerror or exc}") from exc
    if not files:
        raise ConfigError(f"calibration folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                          "give a folder of photos like the ones the model will tag")
    good, skipped = [], []
    for path in files[:MAX_IMAGES]:
        problem = _header_problem(path)
        if problem:
            skipped.append(f"{path.relative_to(folder)}: {problem}")
        else:
            good.append(str(path))
    if len(good) < 2:
        raise ConfigError(f"calibration folder {folder} has {len(good)} readable image(s) of {len(files)} "
                          f"({'; '.join(skipped[:3])}); it needs at least 2 (some calibrate, some are held back "
                          "to compare INT8 with FP32)")
    calibrate, held = _split(good)
    return CalibrationSet(what or f"folder {folder}", calibrate, held, skipped)


def training_folder(model: registry.Model) -> Path | None:
    """The image folder this model was trained on here, if it still exists."""
    run = (model.extra.get("runs") or {}).get(str(model.extra.get("current_run")))
    if not run or not run.get("data"):
        return None
    try:
        from ..train.data import get_pipeline

        root = Path(get_pipeline(run["data"]).root)
    except (OSError, ValueError, TypeError):     # the data pipeline was removed since, or its file is damaged
        return None
    return root if root.is_dir() else None


def builtin() -> CalibrationSet:
    return CalibrationSet("built-in photos (scikit-image)", [BUILTIN_PREFIX + n for n in BUILTIN_CALIBRATION],
                          [BUILTIN_PREFIX + n for n in BUILTIN_HELD_BACK])


def choose(model: registry.Model, folder: str | Path | None) -> CalibrationSet:
    """The calibration set for `model`: `folder`, else its training data, else the built-in photos."""
    if folder:
        return from_folder(folder)
    trained_on = training_folder(model)
    if trained_on is not None:
        return from_folder(trained_on, what=f"its training data ({trained_on})")
    return builtin()


# -- reading them, as views ----------------------------------------------------------------

def open_image(item: str):
    """A path, or skimage:NAME for a bundled photo → PIL RGB image (ValueError when unreadable)."""
    if item.startswith(BUILTIN_PREFIX):
        from PIL import Image
        from skimage import data

        array = getattr(data, item[len(BUILTIN_PREFIX):])()
        if isinstance(array, tuple):        # stereo_motorcycle: (left, right, disparity)
            array = array[0]
        return Image.fromarray(array).convert("RGB")
    return decode_image(item)


def views(image, count: int, *, seed: int):
    """The image, its mirror, then seeded crops (50-100 % of the area, as a photo might be framed;
    some mirrored)."""
    from PIL import ImageOps

    rng = np.random.default_rng(seed)
    out = [image, ImageOps.mirror(image)][:count]
    w, h = image.size
    while len(out) < count:
        area = rng.uniform(0.5, 1.0) * w * h
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = min(w, int(round((area * aspect) ** 0.5))), min(h, int(round((area / aspect) ** 0.5)))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = image.crop((left, top, left + cw, top + ch))
        out.append(ImageOps.mirror(crop) if rng.random() < 0.5 else crop)
    return out


def load_views(items: list[str], spec: PreprocessSpec, *, per_image: int, on_skip=None,
               on_image=None) -> np.ndarray:
    """Preprocessed views of every readable item, stacked; unreadable ones go to `on_skip(item, reason)`."""
    arrays = []
    for i, item in enumerate(items):
        try:
            image = open_image(item)
        except (ValueError, OSError) as exc:
            if on_skip:
                on_skip(item, str(exc))
            continue
        arrays.extend(spec(view) for view in views(image, per_image, seed=i))
        if on_image:
            on_image(i + 1, len(items))
    if not arrays:
        h, w = spec.input_size
        return np.zeros((0, 3, h, w) if spec.layout == "NCHW" else (0, h, w, 3), np.float32)
    return np.stack(arrays).astype(np.float32)
