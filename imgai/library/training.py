"""Back into training: a data pipeline from the library (its kept tags, or only the reviewed ones),
or from a folder of images with `.txt` caption sidecars (comma-separated tags, the format these
datasets are shared in).

Both become the class-folder layout the trainer reads (`ROOT/<tag>/<key>.jpg`), made of hard links
(copies across file systems) in the data folder: each image once per tag, under the same key, so a
multi-label scan gives it all its tags. When every image has exactly one tag the pipeline is
single-label; otherwise it is multi-label, and training picks the bce loss by itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .. import access
from ..errors import ConfigError, DataError
from ..registry import slugify


def library_samples(folder: str | Path, *, reviewed_only: bool = False, min_images_per_tag: int = 1,
                    model_id: str | None = None) -> list[tuple[str, list[str]]]:
    """(image, tags) for the library's images under `folder`: the tags kept for each (accepted by
    score or by a person, or added; `reviewed_only`: a person's only), ratings left out."""
    from .export import kept_tags

    found = kept_tags(folder=str(folder), model_id=model_id, reviewed_only=reviewed_only)
    if not found:
        raise DataError(f"the library has no tagged image under {folder}; tag it first (`imgai tag {folder}`)")
    samples = [(path, [t.label for t in tags if t.category != "rating"]) for path, tags in found.items()]
    return _common_enough(samples, min_images_per_tag)


def caption_samples(folder: str | Path, *, min_images_per_tag: int = 1) -> list[tuple[str, list[str]]]:
    """(image, tags) for images with a `.txt` sidecar next to them (comma-separated tags)."""
    from ..classify.tag import IMAGE_SUFFIXES

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; give a folder of images with .txt captions beside them")
    samples = []
    for image in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        caption = image.with_suffix(".txt")
        if caption.is_file():
            tags = [t.strip() for t in caption.read_text(encoding="utf-8", errors="replace").split(",") if t.strip()]
            samples.append((str(image), list(dict.fromkeys(tags))))
    if not samples:
        raise DataError(f"no image in {folder} has a .txt caption beside it (img.jpg → img.txt, tags separated by commas)")
    return _common_enough(samples, min_images_per_tag)


def _common_enough(samples, min_images_per_tag: int) -> list[tuple[str, list[str]]]:
    if not isinstance(min_images_per_tag, int) or min_images_per_tag < 1:
        raise ConfigError(f"min_images_per_tag must be a whole number ≥ 1, got {min_images_per_tag!r}")
    counts: dict[str, int] = {}
    for _, tags in samples:
        for t in tags:
            counts[t] = counts.get(t, 0) + 1
    kept = [(path, [t for t in tags if counts[t] >= min_images_per_tag]) for path, tags in samples]
    return [(path, tags) for path, tags in kept if tags]


def _safe_folder_name(label: str) -> str:
    name = label.replace(os.sep, "_").replace("/", "_").strip()
    if name in ("", ".", ".."):
        name = f"tag_{slugify(label) or 'unnamed'}"
    return name[:120]


def materialize(slug: str, samples: list[tuple[str, list[str]]]) -> Path:
    """The class-folder layout of `samples` in the data folder (a fresh one each time, renamed into place)."""
    from ..train.pipelines import datasets_folder

    target = datasets_folder() / slug
    tmp = datasets_folder() / f".{slug}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for i, (path, tags) in enumerate(samples):
        key = f"{i:06d}{Path(path).suffix.lower()}"
        for tag in tags:
            folder = tmp / _safe_folder_name(tag)
            folder.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, folder / key)
            except OSError:
                shutil.copy2(path, folder / key)
    if not tmp.exists():
        raise DataError("no image has a tag left to train on (lower --min-images-per-tag, or review more)")
    old = target.with_name(f".{slug}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def add_tag_pipeline(name: str, samples: list[tuple[str, list[str]]], *, overwrite: bool = False, actor=None,
                     **settings):
    """A data pipeline from (image, tags) samples: single-label when each image has one tag,
    multi-label (bce) otherwise. Returns the DataPipeline."""
    from ..train.data import add_pipeline

    access.check(actor, "library")
    multi_label = any(len(tags) > 1 for _, tags in samples)
    folder = materialize(slugify(name), samples)
    return add_pipeline(name, folder, kind="folder", multi_label=multi_label, overwrite=overwrite, actor=actor,
                        **settings)


TAG_SOURCES = ("library", "captions")     # data pipelines whose labels are tags (UI and CLI)


def add_pipeline_from_tags(source: str, name: str, folder: str | Path, *, reviewed_only: bool = False,
                           min_images_per_tag: int = 1, actor=None, **settings):
    """`source` "library" (the library's tags of the images under `folder`) or "captions" (a folder
    of images with .txt sidecars) → a data pipeline. Returns (DataPipeline, number of images)."""
    access.check(actor, "library")
    if source == "library":
        samples = library_samples(folder, reviewed_only=reviewed_only, min_images_per_tag=min_images_per_tag)
    elif source == "captions":
        samples = caption_samples(folder, min_images_per_tag=min_images_per_tag)
    else:
        raise ConfigError(f"tag source {source!r} is not one of {', '.join(TAG_SOURCES)}")
    return add_tag_pipeline(name, samples, actor=actor, **settings), len(samples)
