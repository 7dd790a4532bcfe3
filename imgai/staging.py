"""One way to put a folder or a file in place atomically: build it aside, then rename it.

    with staging_folder(paths().tmp, prefix="convert-") as staging:
        ...write files into staging...
        move_into_place(staging, target, replace=True)

    with staged_file(target) as tmp:         # one file: written beside its target, then renamed
        torch.save(state, tmp)
    write_text(target, text)                 # the same for text

A reader sees the old folder (file) or the new one, never a half-written one. Whatever fails (an
exception, a cancelled job, Ctrl-C) the staging folder (file) goes and `target` stays as it was: an
old folder swapped aside is renamed back when the new one cannot take its place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import StateError


@contextmanager
def staging_folder(parent: Path, *, prefix: str) -> Iterator[Path]:
    """A fresh, empty folder in `parent` (on the same disk as the target, so the move is a rename),
    removed on the way out, whether it was moved into place or not."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def move_into_place(staging: Path, target: Path, *, replace: bool = False, aside_prefix: str = ".") -> Path:
    """Rename the finished `staging` folder to `target`. An existing `target` is refused, unless
    `replace`: then it is renamed aside (`<aside_prefix>old-<name>-<random>`), the new folder takes its
    place and the old one is removed; if that second rename fails the old folder is renamed back."""
    staging, target = Path(staging), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not replace:
        raise StateError(f"{target} already exists; remove it first")
    old = None
    if target.exists():
        old = target.with_name(f"{aside_prefix}old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


@contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` (same folder, so the move is a rename; a name of its own, so
    two writers never share one) for the new file; renamed onto `target` when the block ends without
    an error, removed when it does not."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically (staged_file)."""
    with staged_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)
