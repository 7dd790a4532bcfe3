"""Limits that keep one stranger from taking a public app's machine: each has a default and an
environment variable, and a refusal names both.

Per visitor (signed in or anonymous; never the local owner or an admin): running and queued jobs,
disk, one Hub download's size, training epochs and wall time per job, files and bytes per tag call.
Space-wide (any public app): a free-disk floor below which new downloads, conversions and training
writes are refused, checked again while the job writes. A job that hits a limit ends Failed with
the refusal as its error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .limits import LIMITS, human, limit


def folder_bytes(path: str | Path | None) -> int:
    """Bytes under a folder, following the HF cache's symlinks to their blobs (each counted once)."""
    if not path:
        return 0
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    seen, total = set(), 0
    for p in root.rglob("*") if root.is_dir() else ():
        try:
            real = p.resolve()
            if real.is_file() and real not in seen:
                seen.add(real)
                total += real.stat().st_size
        except OSError:
            continue
    return total


# -- disk -----------------------------------------------------------------------------------

def visitor_usage(owner: str) -> int:
    """Bytes a visitor holds: their models (own files and downloaded snapshots), their data
    pipelines' unpacked images, and their result files."""
    from . import registry
    from .config import paths

    total = 0
    for m in registry.list_models():
        if m.owner == owner:
            total += folder_bytes(paths().model_dir(m.id)) + folder_bytes(m.pytorch_path)
    from .train.pipelines import read_pipelines, unpacked_folder

    total += sum(folder_bytes(unpacked_folder(p)) for p in read_pipelines() if p.owner == owner)
    from .files import visitor_folder

    return total + folder_bytes(visitor_folder(owner))


def free_bytes(folder: str | Path | None = None) -> int:
    from .config import paths

    probe = Path(folder) if folder else paths().home
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def ensure_room(owner: str | None, needed: int, *, what: str, folder: str | Path | None = None) -> None:
    """Refuse (QuotaExceededError) when writing `needed` more bytes for `what` would take a public
    app below its free-disk floor, or a visitor past their disk quota. Jobs call it again just before
    they write, so a disk that fills while they run fails them cleanly."""
    from .access import public

    if public():
        free = free_bytes(folder)
        if free - needed < limit("free_disk"):
            raise LIMITS["free_disk"].refuse(
                f"not enough free disk for {what}: {human(free)} free, {human(needed)} needed")
    if owner is not None:
        used = visitor_usage(owner)
        if used + needed > limit("visitor_disk"):
            raise LIMITS["visitor_disk"].refuse(
                f"{what} needs {human(needed)} and you already use {human(used)}; remove a model or a data pipeline")


def check_download(owner: str | None, size: int, *, what: str) -> None:
    if owner is not None and size > limit("download_size"):
        raise LIMITS["download_size"].refuse(f"{what} is {human(size)}")


# -- training -------------------------------------------------------------------------------

def training_limits(owner: str | None, epochs: int) -> dict:
    """Checked when a visitor's training job is queued; stamped into its params, so the worker
    enforces what was decided (`check_training`)."""
    if owner is None:
        return {}
    if epochs > limit("train_epochs"):
        raise LIMITS["train_epochs"].refuse(f"{epochs} epochs asked")
    return {"wall_time_s": limit("train_seconds")}


def check_training(limits: dict | None, elapsed_s: float, *, owner: str | None, what: str) -> None:
    """Between epochs: the job's wall time, and room for the next checkpoint."""
    wall = (limits or {}).get("wall_time_s")
    if wall is not None and elapsed_s > wall:
        raise LIMITS["train_seconds"].refuse(f"training stopped after {elapsed_s:.0f} s")
    ensure_room(owner, 0, what=what)


# -- tagging --------------------------------------------------------------------------------

def check_tag_call(paths: list, *, limited: bool) -> None:
    if not limited:
        return
    if len(paths) > limit("tag_files"):
        raise LIMITS["tag_files"].refuse(f"{len(paths)} images sent in one call; send fewer at a time")
    size = sum(Path(p).stat().st_size for p in paths if Path(p).is_file())
    if size > limit("tag_bytes"):
        raise LIMITS["tag_bytes"].refuse(f"{human(size)} of images sent in one call; send fewer at a time")
