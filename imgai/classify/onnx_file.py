"""Checks on an untrusted ONNX file before anything loads it into a session."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import UnsafeFileError, ValidationError, require

MAX_ONNX_BYTES = 8 * 1024**3
# The files that passed `check_onnx_file`, by path, with their fingerprint when they passed.
CHECKED_FILE = "onnx_checked.json"
_SAMPLE_BYTES = 1 << 16
_REMEMBERED = 512


def external_data_files(path: Path) -> list[Path]:
    """The external-data files an ONNX model refers to; refuses any that escape its folder."""
    onnx = require("onnx", extra="tag")
    from onnx.external_data_helper import _get_all_tensors

    folder = Path(path).resolve().parent
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ValidationError(f"{Path(path).name} is not a readable ONNX model: {exc}") from exc
    found = []
    for tensor in _get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if Path(location).is_absolute() or folder not in target.parents:
            raise UnsafeFileError(f"{Path(path).name} refers to external data {location!r} outside its folder; refused")
        found.append(target)
    return sorted(set(found))


def check_onnx_file(path: Path) -> None:
    """Full `onnx.checker` check, after refusing oversized files and escaping external data.
    A file that passes is remembered with its fingerprint (`ensure_checked` then skips it)."""
    onnx = require("onnx", extra="tag")
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"{path} does not exist")
    size = path.stat().st_size
    if size == 0 or size > MAX_ONNX_BYTES:
        raise ValidationError(f"{path.name} has {size} bytes; expected a non-empty ONNX file under 8 GiB")
    for extra in external_data_files(path):
        if not extra.is_file():
            raise ValidationError(f"{path.name} needs external data {extra.name}, which is missing")
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ValidationError(f"{path.name} fails onnx.checker: {first}") from exc
    _remember(path)


def fingerprint(path: Path) -> str:
    """What identifies this version of an ONNX file: its size, mtime and a hash of its first and last
    64 KiB. A rename keeps it (a model checked in its staging folder stays checked once moved in);
    any rewrite changes the mtime. (Where external data may point is written in the file itself.)"""
    path = Path(path)
    st = path.stat()
    digest = hashlib.sha256(f"{st.st_size}\0{st.st_mtime_ns}\0".encode())
    with open(path, "rb") as f:
        digest.update(f.read(_SAMPLE_BYTES))
        f.seek(max(0, st.st_size - _SAMPLE_BYTES))
        digest.update(f.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def ensure_checked(path: Path) -> None:
    """`check_onnx_file`, unless this very file (same fingerprint) already passed it: a model is
    checked when it is added, converted or quantized, and again only after its file changes."""
    path = Path(path)
    if path.is_file() and fingerprint(path) in _checked():
        return
    check_onnx_file(path)


def _cache_path() -> Path:
    from ..config import paths

    return paths().home / CHECKED_FILE


def _checked() -> dict[str, str]:
    """fingerprint -> the path it was checked at, oldest first."""
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path) -> None:
    """Record that this version of `path` passed, in one rename (a reader sees the old map or the
    new one), keeping the newest `_REMEMBERED` entries. Two writers at once may lose an entry,
    which costs one re-check later."""
    from ..log import get_logger
    from ..staging import write_text

    checked = _checked()
    key = fingerprint(path)
    checked.pop(key, None)
    checked[key] = str(Path(path).resolve())
    checked = dict(list(checked.items())[-_REMEMBERED:])
    write_text(_cache_path(), json.dumps(checked, indent=1))
    get_logger("imgai.onnx").info("checked %s with onnx.checker", path)
