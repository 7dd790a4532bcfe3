"""Data pipelines: a named, reusable source of training images with its split, size and
augmentations, plus the data check that runs before any job is queued.

A source is a folder with one subfolder per class (`ROOT/cat/*.jpg`, `ROOT/dog/*.jpg`), a zip
with that layout (unpacked safely into the data folder), or a Hugging Face dataset in
`imagefolder` layout already in the local cache. With the multi-label loss (bce), an image filed
under several class folders with the same relative path carries all those labels.
"""

from __future__ import annotations

import json
import random
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import access
from ..access import Actor
from ..db import now
from ..errors import ConfigError, DataError, HubUnavailableError
from ..hub_id import HUB_ID
from ..registry import slugify
from ..staging import write_text
from .pipelines import DataPipeline, datasets_folder, pipelines_folder, read_pipelines

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MIN_PER_CLASS = 2      # one to train on, one to validate with
FEW_PER_CLASS = 10     # below this, a warning


def add_pipeline(name: str, source: str | Path, *, kind: str | None = None, val_split: float = 0.2,
                 image_size: int = 224, flip: bool = False, crop: bool = False, color_jitter: bool = False,
                 overwrite: bool = False, multi_label: bool = False, actor: Actor | None = None) -> DataPipeline:
    """Make a named data pipeline from a folder, a zip file, or a cached Hub dataset; it belongs to
    the actor (shared for the local owner and admins). Only the local owner may name a folder on
    the server; a visitor's zip must fit their disk quota."""
    actor = access.check(actor, "data.create")
    slug = slugify(name)
    target = pipelines_folder() / f"{slug}.json"
    if target.exists() and not overwrite:
        raise ConfigError(f"a data pipeline named {slug!r} exists already; pick another name or remove it "
                          f"(`imgai train data remove {slug}`)")
    if target.exists() and overwrite:
        access.check(actor, "data.remove", get_pipeline(slug))
    kind = kind or _guess_kind(source)
    if kind == "folder":
        access.check(actor, "server.paths")
    settings = dict(val_split=val_split, image_size=image_size, flip=flip, crop=crop, color_jitter=color_jitter)
    DataPipeline(name=slug, kind=kind, location=str(source), root=".", **settings)   # validate settings first
    if kind == "folder":
        folder = Path(source).expanduser().resolve()
        if not folder.is_dir():
            raise DataError(f"{source} is not a folder; give a folder with one subfolder per class")
        location, root = str(folder), image_root(folder)
    elif kind == "zip":
        location = Path(source).name
        from .archive import extract_zip

        from ..quotas import ensure_room, folder_bytes   # a visitor's zip must fit their disk quota

        ensure_room(actor.owner, 2 * folder_bytes(source), what=f"unpacking {location}")
        unpacked = datasets_folder() / slug
        if unpacked.exists():
            shutil.rmtree(unpacked)
        root = image_root(extract_zip(Path(source), unpacked))
    else:
        location, root = str(source), image_root(_hub_snapshot(str(source)))
    report = check_data(root)
    if not report.ok:     # a pipeline that cannot train is never listed (nor picked by the form)
        if kind == "zip":
            shutil.rmtree(datasets_folder() / slug, ignore_errors=True)
        raise DataError(f"data pipeline {slug!r} not created: " + "; ".join(report.problems))
    pipeline = DataPipeline(name=slug, kind=kind, location=location, root=str(root), created_at=now(),
                            owner=actor.owner, multi_label=multi_label, **settings)
    write_text(target, json.dumps(pipeline.to_dict(), indent=2))
    return pipeline


def _guess_kind(source) -> str:
    path = Path(str(source)).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file() and path.suffix.lower() == ".zip":
        return "zip"
    if not path.exists() and HUB_ID.match(str(source)):
        return "hub"
    raise DataError(f"{source} is neither a folder, a .zip file, nor a Hub dataset id (org/name); "
                    "give a folder with one subfolder per class")


def _hub_snapshot(repo: str) -> Path:
    from huggingface_hub import snapshot_download

    repo_id, _, revision = repo.partition("@")
    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision or None, local_files_only=True))
    except Exception as exc:
        raise HubUnavailableError(f"the Hub dataset {repo!r} is not in the local Hugging Face cache ({type(exc).__name__}); "
                                  "download it where the Hub is reachable (`huggingface-cli download --repo-type "
                                  f"dataset {repo_id}`), or use a local folder") from exc


def get_pipeline(name: str) -> DataPipeline:
    path = pipelines_folder() / f"{slugify(name)}.json"
    if not path.is_file():
        known = ", ".join(p.name for p in list_pipelines()) or "none yet"
        raise ConfigError(f"no data pipeline named {name!r} (known: {known}); make one with "
                          "`imgai train data add NAME PATH`")
    return DataPipeline(**json.loads(path.read_text()))


def list_pipelines(*, actor: Actor | None = None) -> list[DataPipeline]:
    """The pipelines an actor may see (shared and their own; all for the local owner and admins)."""
    return access.visible(actor, read_pipelines())


def remove_pipeline(name: str, *, actor: Actor | None = None) -> None:
    pipeline = get_pipeline(name)
    access.check(actor, "data.remove", pipeline)
    (pipelines_folder() / f"{pipeline.name}.json").unlink()
    unpacked = datasets_folder() / pipeline.name
    if pipeline.kind == "zip" and unpacked.exists():
        shutil.rmtree(unpacked, ignore_errors=True)


def resolve_data(data: str | Path, *, actor: Actor | None = None) -> DataPipeline:
    """`--data` is a pipeline name, or (for the local owner) a folder/zip/Hub id used with default
    settings."""
    if (pipelines_folder() / f"{slugify(str(data))}.json").is_file() and not Path(str(data)).is_dir():
        return get_pipeline(str(data))
    access.check(actor, "server.paths")
    kind = _guess_kind(data)
    if kind == "folder":
        folder = Path(data).expanduser().resolve()
        return DataPipeline(name=folder.name or "data", kind=kind, location=str(folder), root=str(image_root(folder)))
    if kind == "hub":
        return DataPipeline(name=slugify(str(data)), kind=kind, location=str(data), root=str(image_root(_hub_snapshot(str(data)))))
    raise DataError(f"make a data pipeline from the zip first: `imgai train data add NAME {data}`")


# -- scanning ---------------------------------------------------------------------------

def _visible(p: Path) -> bool:
    return not p.name.startswith((".", "__"))


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def _images_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and _visible(p)]


def image_root(folder: Path) -> Path:
    """The folder whose subfolders are the classes: steps into `train/` (Hub imagefolder layout)
    and through a single wrapping folder (as zips often have)."""
    folder = Path(folder)
    for _ in range(4):
        subs = _subdirs(folder)
        names = {p.name for p in subs}
        if "train" in names and not _images_in(folder):
            folder = folder / "train"
        elif len(subs) == 1 and not _images_in(folder) and _subdirs(subs[0]):
            folder = subs[0]
        else:
            break
    return folder


@dataclass
class Samples:
    """What a scan found: class names and (relative path, label indices) per image."""
    root: Path
    labels: list[str]
    items: list[tuple[str, list[int]]]
    loose_files: int = 0          # images directly in the root, not in a class folder

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.labels, 0)
        for _, targets in self.items:
            for t in targets:
                counts[self.labels[t]] += 1
        return counts


def scan(root: str | Path, *, multi_label: bool = False, exclude: set[str] | frozenset = frozenset()) -> Samples:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"the data folder {root} does not exist (moved or deleted?); make the data pipeline again")
    classes = [d for d in _subdirs(root)]
    by_class = {d.name: sorted(str(p.relative_to(root)) for p in d.rglob("*")
                               if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                               and all(_visible(q) for q in p.relative_to(root).parents if q.name)
                               and _visible(p) and str(p.relative_to(root)) not in exclude)
                for d in classes}
    labels = [name for name, files in by_class.items() if files]
    index = {name: i for i, name in enumerate(labels)}
    if multi_label:
        grouped: dict[str, list[int]] = {}
        first_path: dict[str, str] = {}
        for name in labels:
            for rel in by_class[name]:
                key = rel.split("/", 1)[1] if "/" in rel else rel
                grouped.setdefault(key, []).append(index[name])
                first_path.setdefault(key, rel)
        items = [(first_path[k], sorted(v)) for k, v in sorted(grouped.items())]
    else:
        items = [(rel, [index[name]]) for name in labels for rel in by_class[name]]
    return Samples(root, labels, items, loose_files=len(_images_in(root)))


def split(samples: Samples, val_split: float, seed: int) -> tuple[list, list]:
    """A stratified split, the same for the same data and seed (so Resume sees the same split)."""
    by_first: dict[int, list] = {}
    for item in samples.items:
        by_first.setdefault(item[1][0], []).append(item)
    train, val = [], []
    rng = random.Random(seed)
    for label in sorted(by_first):
        group = list(by_first[label])
        rng.shuffle(group)
        n_val = 0 if val_split <= 0 else min(len(group) - 1, max(1, round(len(group) * val_split)))
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    return train, val


# -- the data check ---------------------------------------------------------------------

@dataclass
class DataReport:
    root: str
    labels: list[str]
    counts: dict[str, int]
    images: int
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)     # stop the job from starting
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            raise DataError("the training data cannot be used: " + "; ".join(self.problems))

    def to_dict(self) -> dict:
        return asdict(self)


def _check_image(path: Path) -> str | None:
    """None when the image decodes, else the reason."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.draft("RGB", (64, 64))
                im.load()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def check_data(root: str | Path, *, multi_label: bool = False, min_per_class: int = MIN_PER_CLASS) -> DataReport:
    """Count images per class, find unreadable files and classes too small to train on."""
    samples = scan(root, multi_label=multi_label)
    paths_ = [samples.root / rel for rel, _ in samples.items]
    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = list(pool.map(_check_image, paths_))
    unreadable = [(rel, why) for (rel, _), why in zip(samples.items, reasons) if why]
    readable = scan(root, multi_label=multi_label, exclude={rel for rel, _ in unreadable})
    counts = readable.counts()
    report = DataReport(str(samples.root), readable.labels, counts, len(readable.items), unreadable)
    where = samples.root
    if not samples.items:
        report.problems.append(f"no images found in {where}: expected one subfolder per class "
                               f"({where}/cat/*.jpg, {where}/dog/*.jpg)")
    elif not readable.items:
        report.problems.append(f"none of the {len(samples.items)} images in {where} could be read "
                               f"(e.g. {unreadable[0][0]}: {unreadable[0][1]})")
    elif len(readable.labels) < 2:
        report.problems.append(f"only one class ({readable.labels[0]}) in {where}: a classifier needs at least "
                               "two class folders")
    for label, n in counts.items():
        if n < min_per_class and len(readable.labels) >= 2:
            report.problems.append(f"class {label!r} has only {n} readable image(s); it needs at least "
                                   f"{min_per_class} (one to train, one to validate): add images or remove the folder")
        elif n < FEW_PER_CLASS and len(readable.labels) >= 2:
            report.warnings.append(f"class {label!r} has only {n} images; accuracy on it will be unreliable")
    if unreadable:
        report.warnings.append(f"{len(unreadable)} unreadable image(s) will be skipped, e.g. "
                               + ", ".join(f"{rel} ({why[:60]})" for rel, why in unreadable[:3]))
    if samples.loose_files:
        report.warnings.append(f"{samples.loose_files} image(s) directly in {where} are ignored: put them in a "
                               "class folder")
    return report
