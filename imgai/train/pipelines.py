"""What a data pipeline is and where pipelines are stored: the leaf that both `train.data` (which
makes and checks them) and `quotas` (which counts a visitor's unpacked images) read, so neither
imports the other to find them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import paths
from ..errors import ConfigError

KINDS = ("folder", "zip", "hub")


@dataclass
class DataPipeline:
    name: str
    kind: str                   # folder | zip | hub
    location: str               # the folder, the zip's file name, or repo_id[@revision]
    root: str                   # the folder images are read from
    val_split: float = 0.2
    image_size: int = 224
    flip: bool = False          # augmentations, all off by default
    crop: bool = False
    color_jitter: bool = False
    created_at: float = 0.0
    owner: str | None = None    # None: shared; else a visitor's (imgai/access.py)
    multi_label: bool = False   # images carry several tags (from the library or captions): the bce loss

    def __post_init__(self):
        if not self.name or not self.name.strip():
            raise ConfigError("a data pipeline needs a name, e.g. 'shapes'")
        if self.kind not in KINDS:
            raise ConfigError(f"data source kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if isinstance(self.val_split, bool) or not isinstance(self.val_split, (int, float)) \
                or not 0 <= self.val_split < 0.9:
            raise ConfigError(f"val_split={self.val_split!r} is out of range: use a fraction in [0, 0.9), e.g. 0.2")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) \
                or not 16 <= self.image_size <= 2048:
            raise ConfigError(f"image_size={self.image_size!r} must be a whole number from 16 to 2048, e.g. 224")

    @property
    def augmentations(self) -> list[str]:
        return [a for a in ("flip", "crop", "color_jitter") if getattr(self, a)]

    def to_dict(self) -> dict:
        return asdict(self)


def pipelines_folder() -> Path:
    """Where each pipeline's settings are kept (one NAME.json each)."""
    folder = paths().home / "train" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def datasets_folder() -> Path:
    """Where zip pipelines are unpacked (one folder each)."""
    return paths().home / "train" / "datasets"


def unpacked_folder(pipeline: DataPipeline) -> Path | None:
    """Where a zip pipeline's images were unpacked (None for the other kinds)."""
    return datasets_folder() / pipeline.name if pipeline.kind == "zip" else None


def read_pipelines() -> list[DataPipeline]:
    """Every stored pipeline, whoever owns it (a file that does not read as one is passed over)."""
    found = []
    for path in sorted(pipelines_folder().glob("*.json")):
        try:
            found.append(DataPipeline(**json.loads(path.read_text())))
        except (ValueError, TypeError, ConfigError):
            continue
    return found
