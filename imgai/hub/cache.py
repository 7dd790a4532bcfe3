"""The local Hugging Face cache (`HF_HOME`, shared with every other HF tool on the machine):
which supported models it already holds, so they can be added with no Hub at all."""

from __future__ import annotations

import json
from pathlib import Path

from .. import registry
from ..cards import card_license
from ..classify.architectures import detect_folder
from ..errors import HubNotFoundError, HubUnavailableError, ImgaiError
from ..log import get_logger
from .results import HubModel, ModelDetails, card_summary, label_names
from .support import num_labels

LOG = get_logger("imgai.hub")


def hf_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _complete(snapshot: Path) -> bool:
    """A snapshot imgai can register: weights (or one ONNX model) are there, not only its config."""
    names = {p.name for p in snapshot.iterdir()} if snapshot.is_dir() else set()
    has_weights = ("model.safetensors" in names or "model.safetensors.index.json" in names
                   or "pytorch_model.bin" in names or any(n.endswith(".onnx") for n in names))
    return has_weights and all((snapshot / n).exists() for n in names)   # no dangling blob links


def _cached_entries():
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(hf_cache_dir())
    except (CacheNotFound, ValueError):
        return []
    entries = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            snapshot = Path(rev.snapshot_path)
            if not _complete(snapshot):
                continue
            try:
                detected = detect_folder(snapshot)
            except ImgaiError:
                continue
            entries.append((repo, rev, snapshot, detected))
    return entries


def cached_models(query: str = "", *, family: str | None = None, library: str | None = None) -> list[HubModel]:
    """Supported models in the local HF cache, newest first, filtered like a Hub search."""
    out = []
    q = (query or "").lower()
    for repo, rev, snapshot, detected in sorted(_cached_entries(), key=lambda e: -e[1].last_modified):
        if q and q not in repo.repo_id.lower():
            continue
        if family and detected.family != family or library and detected.library != library:
            continue
        config = _read_config(snapshot)
        out.append(HubModel(
            repo_id=repo.repo_id, architecture=detected.architecture, family=detected.family,
            library=detected.library, labels=num_labels(config) if config else None,
            size=rev.size_on_disk, license=card_license(snapshot), sha=rev.commit_hash, cached=True))
    return out


def _read_config(snapshot: Path) -> dict | None:
    try:
        data = json.loads((snapshot / "config.json").read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def find_snapshot(repo_id: str, revision: str | None = None) -> tuple[Path, str] | None:
    """(snapshot folder, commit) of a complete cached copy of `repo_id` at `revision` (a branch,
    tag or commit; None: main), or None."""
    for repo, rev, snapshot, _ in _cached_entries():
        if repo.repo_id != repo_id:
            continue
        if revision is None and ("main" in rev.refs or not rev.refs):
            return snapshot, rev.commit_hash
        if revision is not None and (revision in rev.refs or rev.commit_hash.startswith(revision)):
            return snapshot, rev.commit_hash
    return None


def add_cached(repo_id: str, *, revision: str | None = None, owner: str | None = None) -> registry.Model:
    """Register a model that is already in the local HF cache (works with no Hub at all), for
    `owner` (None: shared). Internal: the checked caller is the download job."""
    from ..sources import add_folder

    found = find_snapshot(repo_id, revision)
    if found is None:
        raise HubUnavailableError(f"{repo_id}@{revision or 'main'} is not complete in the local HF cache "
                                  f"({hf_cache_dir()}) and the Hub cannot be reached; connect and download it")
    snapshot, commit = found
    model = add_folder(snapshot, source=f"{repo_id}@{commit}", name=repo_id.split("/")[-1], copy=False,
                       owner=owner)
    LOG.info("registered %s from the local HF cache as %s", repo_id, model.id)
    return model


def cached_details(repo_id: str, *, revision: str | None, message: str) -> ModelDetails:
    found = find_snapshot(repo_id, revision)
    if found is None:
        raise HubNotFoundError(f"{message} {repo_id} is not in the local HF cache.")
    snapshot, commit = found
    model = next((m for m in cached_models() if m.repo_id == repo_id and m.sha == commit), None)
    files = [{"path": p.name, "size": p.stat().st_size, "needed": True} for p in sorted(snapshot.iterdir())]
    config = _read_config(snapshot) or {}
    readme = snapshot / "README.md"
    registered = registry.find_by_source(f"{repo_id}@{commit}")
    return ModelDetails(
        repo_id=repo_id, sha=commit, supported=model is not None, reason=None if model else "not supported",
        model=model, files=files, download_size=0, total_size=sum(f["size"] for f in files),
        card_summary=card_summary(readme.read_text(errors="replace")) if readme.is_file() else "",
        label_names=label_names(config)[:20], private=False, gated=False,
        in_registry=registered.id if registered else None, registered_other_revision=None)
