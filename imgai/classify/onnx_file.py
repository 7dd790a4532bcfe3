"""Checks on an untrusted ONNX file before anything loads it into a session."""

from __future__ import annotations

from pathlib import Path

from ..errors import UnsafeFileError, ValidationError, require

MAX_ONNX_BYTES = 8 * 1024**3


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
    """Full `onnx.checker` check, after refusing oversized files and escaping external data."""
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
