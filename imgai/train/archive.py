"""Unpacking an uploaded zip of training images without trusting it: no path leaves the target
folder, no links, limits on size, file count and compression ratio, written to a temporary
folder and renamed into place."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import UnsafeFileError
from ..staging import move_into_place, staging_folder


def max_zip_bytes() -> int:
    from .. import settings

    return settings.get("IMGAI_MAX_ZIP_BYTES")      # uncompressed total


def max_zip_files() -> int:
    from .. import settings

    return settings.get("IMGAI_MAX_ZIP_FILES")


MAX_RATIO = 200   # a member that expands more than this is treated as a zip bomb


def extract_zip(archive: Path, target: Path) -> Path:
    """Unpack `archive` into the new folder `target` (which must not exist yet)."""
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise UnsafeFileError(f"{target} already exists; remove it or pick another data pipeline name")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeFileError(f"{archive.name} is not a readable zip file: {exc}") from exc
    with zf:
        members = _checked_members(zf, archive.name)
        with staging_folder(target.parent, prefix=f".{target.name}-") as tmp:
            for info, rel in members:
                dest = tmp.joinpath(*rel.parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                _copy_limited(zf, info, dest)
            move_into_place(tmp, target)
    return target


def _checked_members(zf: zipfile.ZipFile, label: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = zf.infolist()
    if len(infos) > max_zip_files():
        raise UnsafeFileError(f"{label} holds {len(infos)} entries, more than the limit of {max_zip_files()} "
                              "(IMGAI_MAX_ZIP_FILES)")
    total = sum(i.file_size for i in infos)
    if total > max_zip_bytes():
        raise UnsafeFileError(f"{label} expands to {total / 1e9:.1f} GB, more than the limit of "
                              f"{max_zip_bytes() / 1e9:.1f} GB (IMGAI_MAX_ZIP_BYTES)")
    out = []
    for info in infos:
        name = info.filename.replace("\\", "/")
        rel = PurePosixPath(name)
        if name.startswith("/") or (rel.parts and ":" in rel.parts[0]) or ".." in rel.parts:
            raise UnsafeFileError(f"{label} contains the path {info.filename!r} that points outside the "
                                  "extraction folder; refused")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeFileError(f"{label} contains a symbolic link {info.filename!r}; refused")
        if info.flag_bits & 0x1:
            raise UnsafeFileError(f"{label} is encrypted ({info.filename!r}); upload an unencrypted zip")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20:
            raise UnsafeFileError(f"{label}: {info.filename!r} expands {info.file_size // info.compress_size}× "
                                  "(a zip bomb?); refused")
        parts = [p for p in rel.parts if p not in ("", ".")]
        if not parts or parts[0] == "__MACOSX":
            continue
        out.append((info, PurePosixPath(*parts)))
    return out


def _copy_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    """Copy one member, never writing more bytes than its header promised."""
    written = 0
    with zf.open(info) as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > info.file_size:
                raise UnsafeFileError(f"{info.filename!r} is larger than its zip header says; refused")
            out.write(chunk)
