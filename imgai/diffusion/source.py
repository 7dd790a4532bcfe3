"""Where a diffusion pipeline comes from: a Hub repo (the key's upstream, or `--source org/name`)
or a local diffusers folder, pinned to a revision, with what its files hold.

A Hub repo goes through diffusers' own `DiffusionPipeline.download` (the call `from_pretrained`
makes), so the files are the ones diffusers would load; a local folder's revision is a content
fingerprint, so a re-run can tell "same source" without a commit hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConversionError, HubUnavailableError, UnsupportedModelError
from ..cards import read_card_data
from ..hub_id import HUB_ID
from .keys import DiffusionModelKey
from ..words import term

SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
TORCH_DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I8": "int8",
                     "U8": "uint8", "I32": "int32", "I64": "int64"}
_SAMPLED_ABOVE = 64 << 20   # files larger than this are fingerprinted by header + samples


@dataclass(frozen=True)
class Component:
    """One pipeline component as stored: its weights' parameter counts by dtype, and its size."""
    name: str
    library: str | None          # diffusers | transformers | None (scheduler, tokenizer)
    class_name: str | None
    params_by_dtype: dict = field(default_factory=dict)   # safetensors dtype → element count
    file_bytes: int = 0

    @property
    def params(self) -> int:
        return sum(self.params_by_dtype.values())

    @property
    def dtype(self) -> str | None:
        """The dtype most of its weights are stored in (torch name)."""
        if not self.params_by_dtype:
            return None
        top = max(self.params_by_dtype, key=self.params_by_dtype.get)
        return TORCH_DTYPE_NAMES.get(top, top.lower())

    @property
    def has_weights(self) -> bool:
        return bool(self.params_by_dtype)


@dataclass(frozen=True)
class Source:
    spec: str                    # what the user gave: a repo id or a path
    kind: str                    # "hub" | "local"
    path: Path                   # the folder holding the pipeline (for hub: the cached snapshot)
    revision: str                # commit sha (hub) or "sha256:…" content fingerprint (local)
    repo_id: str | None          # the Hub repo (hub sources)
    base_model: str              # the Hub repo the output derives from (card metadata)
    license: str | None
    pipeline_class: str
    components: dict = field(default_factory=dict)   # name → Component

    def to_dict(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, "folder": str(self.path), "revision": self.revision,
                "repo_id": self.repo_id, "base_model": self.base_model, "license": self.license,
                "pipeline_class": self.pipeline_class}

    @property
    def weight_components(self) -> list[Component]:
        return [c for c in self.components.values() if c.has_weights]

    def total_bytes(self) -> int:
        return sum(c.file_bytes for c in self.components.values())


def resolve_source(model_key: DiffusionModelKey, spec: str | None = None) -> Source:
    """Pin the pipeline for `model_key`: `spec` is a local folder, a Hub id (`org/name[@revision]`),
    or None for the key's upstream repo."""
    spec = (spec or model_key.repo_id).strip()
    local = Path(spec).expanduser()
    if local.exists() or spec.startswith((".", "/", "~")) or "\\" in spec:
        if not local.is_dir():
            raise ConversionError(f"source folder {spec!r} does not exist; pass a diffusers pipeline folder "
                                  "(with model_index.json) or a Hub id like 'org/name'")
        folder = local.resolve()
        return _describe(model_key, spec=str(folder), kind="local", folder=folder, repo_id=None,
                         revision=fingerprint(folder))
    m = HUB_ID.match(spec)
    if not m:
        raise ConversionError(f"source {spec!r} is neither an existing folder nor a Hub id like 'org/name' "
                              "or 'org/name@revision'")
    folder = download_pipeline(m["repo"], revision=m["rev"])
    return _describe(model_key, spec=spec, kind="hub", folder=folder, repo_id=m["repo"], revision=folder.name)


def download_pipeline(repo_id: str, *, revision: str | None = None) -> Path:
    """The pipeline's files, fetched the way `DiffusionPipeline.from_pretrained(repo_id)` fetches them
    (into the standard HF cache). Returns the snapshot folder, named by its commit. Hub failures are
    imgai's typed errors (hub.client.translate), also where diffusers wraps them in an OSError."""
    from diffusers import DiffusionPipeline

    from ..hub.client import translate

    try:
        return Path(DiffusionPipeline.download(repo_id, revision=revision, use_safetensors=True))
    except Exception as exc:
        # diffusers re-raises "could not fetch the metadata" as an OSError from the Hub's own error
        cause = exc.__cause__ or exc.__context__
        err = (translate(exc, repo_id=repo_id, revision=revision, action="fetch")
               or (translate(cause, repo_id=repo_id, revision=revision, action="fetch") if cause else None))
        if err is None and isinstance(exc, OSError) and any(w in str(exc).lower() for w in ("offline", "connect",
                                                                                             "cache")):
            err = HubUnavailableError(f"cannot fetch {repo_id}: the Hub cannot be reached and it is not in the "
                                      "local cache")
        if err is None:
            raise
        if isinstance(err, HubUnavailableError):
            err = HubUnavailableError(f"{err}; or give {term('source-one')}")
        raise err from exc


def _describe(model_key: DiffusionModelKey, *, spec: str, kind: str, folder: Path, repo_id: str | None,
              revision: str) -> Source:
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise ConversionError(f"{spec} is not a diffusers pipeline folder: model_index.json is missing")
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{index_path} is not valid JSON ({exc}); the source folder is damaged") from exc
    found = index.get("_class_name")
    if found != model_key.pipeline:
        raise UnsupportedModelError(f"{spec} holds a {found or 'unnamed'} pipeline, but key {model_key.key!r} "
                                    f"expects {model_key.pipeline}; pick the key that matches the source")
    components = {name: inspect_component(folder, name, value) for name, value in index.items()
                  if not name.startswith("_") and isinstance(value, list) and value[0] is not None}
    if model_key.denoiser not in components or not components[model_key.denoiser].has_weights:
        raise ConversionError(f"{spec} has no safetensors weights for its {model_key.denoiser}; "
                              "imgai reads safetensors only (convert the pickles with diffusers first)")
    card = read_card_data(folder)
    base = card.get("base_model")
    base = base[0] if isinstance(base, list) and base else base
    return Source(spec=spec, kind=kind, path=folder, revision=revision, repo_id=repo_id,
                  base_model=repo_id or (base if isinstance(base, str) else None) or model_key.repo_id,
                  license=card.get("license"), pipeline_class=found, components=components)


def inspect_component(folder: Path, name: str, entry: list) -> Component:
    """Read the component's safetensors headers (never its tensors)."""
    sub = folder / name
    params: dict[str, int] = {}
    size = 0
    if sub.is_dir():
        weights = _weight_files(sub)
        for f in sorted(sub.rglob("*")):   # what loads: the chosen weights and every non-weight file
            if f.is_file() and (f in weights or f.suffix not in (".safetensors", ".bin", ".ckpt", ".pt", ".pth")):
                size += f.stat().st_size
        for f in weights:
            for dtype, count in read_safetensors_params(f).items():
                params[dtype] = params.get(dtype, 0) + count
    return Component(name=name, library=entry[0], class_name=entry[1] if len(entry) > 1 else None,
                     params_by_dtype=params, file_bytes=size)


_PLAIN_WEIGHTS = re.compile(r"^[^.]+(-\d+-of-\d+)?\.safetensors$")   # not `*.fp16.safetensors` (a variant)


def _weight_files(sub: Path) -> list[Path]:
    """The safetensors a component loads: no variant files (`*.fp16*.safetensors`) when plain ones exist."""
    files = sorted(sub.glob("*.safetensors"))
    plain = [f for f in files if _PLAIN_WEIGHTS.match(f.name)]
    return plain or files


def read_safetensors_header(path: Path) -> dict:
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ConversionError(f"{path} is not a safetensors file (too short); the source folder is damaged")
        n = int.from_bytes(raw, "little")
        if n <= 0 or n > 100_000_000 or n > path.stat().st_size:
            raise ConversionError(f"{path} is not a valid safetensors file (header length {n}); "
                                  "the source folder is damaged")
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            raise ConversionError(f"{path} has a damaged safetensors header ({exc})") from exc
    ends = [meta["data_offsets"][1] for name, meta in header.items() if name != "__metadata__"]
    expected = 8 + n + max(ends, default=0)
    if path.stat().st_size < expected:
        raise ConversionError(f"{path} is truncated: {path.stat().st_size} of {expected} bytes; the source "
                              "folder is damaged (download or copy it again)")
    return header


def read_safetensors_params(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, meta in read_safetensors_header(path).items():
        if name == "__metadata__":
            continue
        n = 1
        for d in meta.get("shape", []):
            n *= int(d)
        counts[meta["dtype"]] = counts.get(meta["dtype"], 0) + n
    return counts


def dtype_summary(path: Path) -> str:
    """e.g. 'int8 71%, float32 29%' by bytes, for the files of one output component."""
    files = [path] if path.is_file() else _weight_files(path)
    by_bytes: dict[str, int] = {}
    for f in files:
        for dtype, n in read_safetensors_params(f).items():
            by_bytes[dtype] = by_bytes.get(dtype, 0) + n * SAFETENSORS_BYTES.get(dtype, 4)
    total = sum(by_bytes.values()) or 1
    parts = sorted(by_bytes.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{TORCH_DTYPE_NAMES.get(d, d.lower())} {b / total:.0%}" for d, b in parts)


def fingerprint(folder: Path) -> str:
    """A content fingerprint of a local pipeline folder: sha256 over every file's relative path,
    size and bytes (files over 64 MB: their first and last MB and 16 sampled MB in between)."""
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = f.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        size = f.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= _SAMPLED_ABOVE:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            else:
                for i in range(18):
                    fh.seek(min(size - (1 << 20), (size - (1 << 20)) * i // 17))
                    digest.update(fh.read(1 << 20))
    return "sha256:" + digest.hexdigest()[:20]
