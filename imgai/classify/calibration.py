"""Calibration photos for INT8 quantization: where they come from, whether they can judge it, their views.

Sources, in order: the folder the user gives; else the model's own training data when it was
trained here; else real photos shipped by scikit-image (then the copy is judged on photos that
are not the user's, and the note says so). Every photo both calibrates and judges: the search
rotates which ones are held back (k-fold, imgai/classify/int8_search.py). Each photo gives
several views (itself, its mirror, seeded crops), so a dozen photos still give many inputs.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import ConfigError
from .preprocess import PreprocessSpec, decode_image

# scikit-image's bundled real photos (no download): the default when the user gives none
BUILTIN_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right", "horse",
                  "camera", "coins", "moon", "retina", "hubble_deep_field")
BUILTIN_PREFIX = "skimage:"
MIN_PHOTOS = 4                   # fewer usable photos cannot both calibrate and judge (k-fold needs some of each)
MIN_SIDE = 32                    # a photo's smaller side, in pixels, at least
MAX_ASPECT = 4.0                 # and its sides' ratio at most (a strip is not a photo)
MAX_IMAGES = 256                 # at most this many images are read from a folder
CALIBRATION_VIEWS = 8            # views per photo when it calibrates
VALIDATION_VIEWS = 16            # views per photo when it is held back (the first CALIBRATION_VIEWS are shared)
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F", "P;L")


@dataclass
class CalibrationSet:
    source: str                                      # what the photos are, in words
    photos: list[str]                                # paths, or skimage:NAME
    skipped: list[str] = field(default_factory=list)  # "file: reason"
    not_yours: bool = False                          # the built-in photos, not the user's
    uploaded: str | None = None                      # the folder imgai copied uploads into (removed after)

    def to_dict(self) -> dict:
        return asdict(self)


def _problem(path: Path) -> tuple[str | None, bool]:
    """(why the file cannot serve, or None; whether it is grayscale), from its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            size, mode = im.size, im.mode
            im.verify()
    except UnidentifiedImageError:
        return "not an image (or a format Pillow cannot read)", False
    except (OSError, SyntaxError, ValueError) as exc:
        return f"damaged image: {exc}", False
    w, h = size
    if min(w, h) < MIN_SIDE:
        return f"too small ({w}x{h}; each side needs ≥ {MIN_SIDE} px)", False
    if max(w, h) / min(w, h) > MAX_ASPECT:
        return f"odd shape ({w}x{h}; sides more than {MAX_ASPECT:g}:1)", False
    return None, mode in GRAYSCALE_MODES


def from_folder(folder: str | Path, *, what: str | None = None) -> CalibrationSet:
    """The usable photos of a folder (recursively, sorted); the others are skipped with a note.
    Refused when the folder is missing or unreadable, when fewer than MIN_PHOTOS photos are usable,
    or when every usable one is grayscale (a colour model is not judged on gray photos alone)."""
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
                          f"give a folder of at least {MIN_PHOTOS} photos like the ones the model will tag")
    good, gray, skipped = [], 0, []
    for path in files[:MAX_IMAGES]:
        problem, is_gray = _problem(path)
        if problem:
            skipped.append(f"{path.relative_to(folder)}: {problem}")
        else:
            good.append(str(path))
            gray += is_gray
    if len(good) < MIN_PHOTOS:
        raise ConfigError(f"calibration folder {folder} has {len(good)} usable photo(s) of {len(files)} image "
                          f"file(s) ({'; '.join(skipped[:3]) or 'too few'}); it needs at least {MIN_PHOTOS} "
                          "(each is held back once to judge INT8 against FP32 while the others calibrate)")
    if gray == len(good):
        raise ConfigError(f"calibration folder {folder} has {len(good)} usable photo(s), all grayscale; it needs at "
                          f"least 1 colour photo (and {MIN_PHOTOS} photos in all) like the ones the model will tag")
    return CalibrationSet(what or f"folder {folder}", good, skipped)


def from_uploads(files: list, *, into: Path) -> CalibrationSet:
    """Photos a visitor uploaded (paths the web framework saved): copied by imgai into a fresh folder
    under `into` (their names reduced to a safe form), then judged like a folder."""
    import secrets

    from .tag import IMAGE_SUFFIXES

    files = [Path(str(f)) for f in files or []][:MAX_IMAGES]
    folder = Path(into) / f"uploads-{secrets.token_hex(6)}"
    folder.mkdir(parents=True)
    for i, f in enumerate(files):
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
            shutil.copyfile(f, folder / f"{i:04d}{f.suffix.lower()}")
    try:
        images = from_folder(folder, what=f"{len(files)} uploaded photo(s)")
    except ConfigError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ConfigError(str(exc).replace(f"calibration folder {folder}", f"the {len(files)} uploaded file(s)")) from None
    images.uploaded = str(folder)
    return images


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
    return CalibrationSet("built-in photos (scikit-image)", [BUILTIN_PREFIX + n for n in BUILTIN_PHOTOS],
                          not_yours=True)


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

        name = item[len(BUILTIN_PREFIX):]
        if name.startswith("motorcycle_"):   # stereo_motorcycle: (left, right, disparity)
            array = data.stereo_motorcycle()[0 if name.endswith("left") else 1]
        else:
            array = getattr(data, name)()
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


def photo_views(items: list[str], spec: PreprocessSpec, *, per_image: int, on_skip=None,
                on_image=None) -> list[np.ndarray]:
    """Each readable item's preprocessed views (one array per photo); unreadable ones go to
    `on_skip(item, reason)`."""
    out = []
    for i, item in enumerate(items):
        try:
            image = open_image(item)
        except (ValueError, OSError) as exc:
            if on_skip:
                on_skip(item, str(exc))
            continue
        out.append(np.stack([spec(view) for view in views(image, per_image, seed=i)]).astype(np.float32))
        if on_image:
            on_image(i + 1, len(items))
    return out
