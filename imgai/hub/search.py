"""Search the Hub for models imgai can take, and inspect one repo.

Only image-classification models of a family that passed the conversion sweep (support_table.json)
and whose weights are safetensors are listed; support is decided from the repo's metadata and its
config.json, never from its name. What was hidden is counted by reason (custom code, not an
image-classification head, family failed the sweep, no safetensors weights, …) and listed with the
reason (`imgai hub search --show-hidden`). When the Hub cannot be reached, the supported models
already in the local HF cache are listed instead.
"""

from __future__ import annotations

import concurrent.futures
import json

from .. import registry
from ..classify.architectures import FAMILIES, HIDDEN_REASONS, LIBRARIES, Detected
from ..hub_id import split_revision
from ..errors import (ConfigError, HubAccessError, HubRateLimitError, HubUnavailableError, ImgaiError,
                      UnsupportedModelError)
from .results import HubModel, ModelDetails, SearchResult, card_summary, label_names
from .client import REQUEST_TIMEOUT_S, api, hub_errors, hub_status
from .support import (category_of, detect, has_safetensors, is_onnx_repo, metadata_verdict, num_labels,
                      plan_download, size_of, to_repo_files)

SORTS = {"downloads": "downloads", "likes": "likes", "updated": "lastModified"}
FAMILY_NAMES = tuple(f.name for f in FAMILIES)
EXPAND = ["config", "library_name", "pipeline_tag", "downloads", "likes", "lastModified", "gated", "private",
          "sha", "cardData", "tags", "safetensors"]
COLUMNS = ["repo id", "family", "architecture", "library", "labels", "parameters", "size", "license", "downloads",
           "last modified", "gated"]


def check_filters(*, family: str | None, library: str | None, sort: str, limit: int) -> tuple[str | None, str | None]:
    fam = None
    if family:
        fam = next((f for f in FAMILY_NAMES if f.lower() == family.lower()), None)
        if fam is None:
            raise ConfigError(f"family {family!r} is not one of {', '.join(FAMILY_NAMES)}")
    if library and library not in LIBRARIES:
        raise ConfigError(f"library {library!r} is not one of {', '.join(LIBRARIES)}")
    if sort not in SORTS:
        raise ConfigError(f"sort {sort!r} is not one of {', '.join(SORTS)}")
    if not 1 <= int(limit) <= 100:
        raise ConfigError(f"limit {limit} must be between 1 and 100")
    return fam, library or None


def search(query: str = "", *, family: str | None = None, library: str | None = None, sort: str = "downloads",
           limit: int = 20, token=None) -> SearchResult:
    """Supported models matching `query` (`imgai hub search`)."""
    family, library = check_filters(family=family, library=library, sort=sort, limit=limit)
    query = (query or "").strip()
    status = hub_status()
    if not status.online:
        from .cache import cached_models

        found = cached_models(query, family=family, library=library)[:limit]
        return SearchResult(query, found, False, status.message + _none_cached(found, query))
    scan = min(limit * 5, 500)
    try:
        with hub_errors(action="search"):
            listed = list(api().list_models(search=query or None, filter=library, sort=SORTS[sort], direction=-1,
                                            limit=scan, expand=EXPAND, token=token))
    except HubUnavailableError as exc:   # it answered a moment ago, then stopped: say so, show the cache
        from .cache import cached_models
        from .client import forget_status

        forget_status()
        return SearchResult(query, cached_models(query, family=family, library=library)[:limit], False,
                            f"{exc} Showing the supported models in the local Hugging Face cache.")
    found: list[HubModel] = []
    hidden: list[dict] = []
    unreadable = 0
    candidates = []
    for item in listed:
        verdict = metadata_verdict(config=item.config, pipeline_tag=item.pipeline_tag, library_name=item.library_name)
        if verdict:
            hidden.append({"repo_id": item.id, "category": verdict[0], "reason": verdict[1]})
        else:
            candidates.append(item)
    scanned = len(listed) - len(candidates)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        batch = 6
        for start in range(0, len(candidates), batch):
            if len(found) >= limit:
                break
            chunk = candidates[start:start + batch]
            scanned += len(chunk)
            for item, outcome in zip(chunk, pool.map(lambda it: _inspect_listed(it, token), chunk)):
                kind, category, value = outcome
                if kind == "ok":
                    if family is None or value.family == family:
                        found.append(value)
                else:
                    unreadable += kind == "unreadable"
                    hidden.append({"repo_id": item.id, "category": category, "reason": value})
    found = found[:limit]
    unsupported = len(hidden) - unreadable
    by_reason = {HIDDEN_REASONS[k]: n for k in HIDDEN_REASONS
                 if (n := sum(h["category"] == k for h in hidden))}
    parts = [f"{len(found)} supported model{'s' if len(found) != 1 else ''}"]
    parts.append(f"{unsupported} hidden as unsupported"
                 + (f" ({', '.join(f'{n} {why}' for why, n in by_reason.items())})" if by_reason else ""))
    if unreadable:
        parts.append(f"{unreadable} gated or private (sign in to inspect)")
    return SearchResult(query, found, True, "; ".join(parts) + f" (of {scanned} inspected).",
                        hidden_unsupported=unsupported, hidden_unreadable=unreadable, scanned=scanned, hidden=hidden,
                        hidden_by_reason=by_reason)


def _inspect_listed(item, token) -> tuple[str, str | None, object]:
    """("ok", None, HubModel) or ("unsupported" | "unreadable", category, reason)."""
    try:
        model, _, files, _ = _describe(item.id, sha=item.sha, listed=item, token=token)
    except HubAccessError as exc:
        return "unreadable", "unreadable", str(exc)
    except UnsupportedModelError as exc:
        return "unsupported", category_of(exc), str(exc)
    except (HubRateLimitError, HubUnavailableError):
        raise                      # the whole search is affected, not this one repo
    except ImgaiError as exc:
        return "unreadable", "unreadable", str(exc)
    if model.library != "onnx" and not has_safetensors(files):
        return "unsupported", "weights", ("its weights are a pickle (pytorch_model.bin) only; Browse offers "
                                          "models with safetensors weights")
    return "ok", None, model


def _read_json(repo_id: str, filename: str, *, sha: str, token) -> dict:
    from huggingface_hub import hf_hub_download

    with hub_errors(repo_id, revision=sha, action="read", filename=filename):
        path = hf_hub_download(repo_id, filename, revision=sha, token=token)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise UnsupportedModelError(f"{repo_id}'s {filename} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnsupportedModelError(f"{repo_id}'s {filename} is not a JSON object")
    return data


def _describe(repo_id: str, *, sha: str | None, listed=None, token=None, revision: str | None = None):
    """(HubModel, info, files, config) for a repo, or UnsupportedModelError / HubAccessError."""
    with hub_errors(repo_id, revision=revision or sha, action="inspect"):
        info = api().model_info(repo_id, revision=sha or revision, files_metadata=True, token=token,
                                timeout=REQUEST_TIMEOUT_S)
    files = to_repo_files(info.siblings)
    onnx = is_onnx_repo(files)
    config: dict | None = None
    if any(f.path == "config.json" for f in files):
        try:
            config = _read_json(repo_id, "config.json", sha=info.sha, token=token)
        except HubAccessError:
            meta = info.config or (listed.config if listed is not None else None) or {}
            if not meta.get("model_type"):
                raise
            config = meta   # gated: decide from the metadata the Hub shows everyone
    if onnx:
        detected = Detected("onnx", "onnx", "ONNX")
    elif config is not None:
        detected = detect(config)
    else:
        raise UnsupportedModelError(f"{repo_id} has no config.json, so its architecture cannot be told")
    plan = plan_download(files, library=detected.library)
    card = info.card_data
    license_ = getattr(card, "license", None) if card else None
    if license_ is None:
        license_ = next((t.split(":", 1)[1] for t in (info.tags or []) if t.startswith("license:")), None)
    params = info.safetensors.total if info.safetensors else None
    model = HubModel(
        repo_id=info.id, architecture=detected.architecture, family=detected.family, library=detected.library,
        labels=num_labels(config) if config else None, parameters=params, size=size_of(plan),
        license=license_ if isinstance(license_, str) else ", ".join(license_ or []) or None,
        downloads=info.downloads, likes=info.likes,
        last_modified=info.last_modified.strftime("%Y-%m-%d") if info.last_modified else None,
        gated=info.gated or False, sha=info.sha)
    return model, info, files, config


# -- one repo in detail ---------------------------------------------------------------------

def info(repo_id: str, *, revision: str | None = None, token=None) -> ModelDetails:
    """Details of one repo: support, files and sizes, labels, card summary, registry state."""
    if "@" in repo_id and revision is None:
        repo_id, revision = split_revision(repo_id)
    else:
        split_revision(repo_id)
    status = hub_status()
    if not status.online:
        from .cache import cached_details

        return cached_details(repo_id, revision=revision, message=status.message)
    reason, model, config = None, None, None
    try:
        model, hf_info, files, config = _describe(repo_id, sha=None, revision=revision, token=token)
        sha = hf_info.sha
    except UnsupportedModelError as exc:
        reason = str(exc)
        with hub_errors(repo_id, revision=revision, action="inspect"):
            hf_info = api().model_info(repo_id, revision=revision, files_metadata=True, token=token,
                                       timeout=REQUEST_TIMEOUT_S)
        files, sha = to_repo_files(hf_info.siblings), hf_info.sha
    needed: set[str] = set()
    if model is not None:
        needed = {f.path for f in plan_download(files, library=model.library)}
    summary = ""
    if any(f.path == "README.md" for f in files):
        summary = _card_summary(repo_id, sha=sha, token=token)
    labels = label_names(config)
    registered = registry.find_by_source(f"{repo_id}@{sha}")
    other = next((m.id for m in registry.list_models() if m.source.startswith(f"{repo_id}@")), None)
    return ModelDetails(
        repo_id=hf_info.id, sha=sha, supported=model is not None, reason=reason, model=model,
        files=[{"path": f.path, "size": f.size, "needed": f.path in needed} for f in files],
        download_size=size_of([f for f in files if f.path in needed]) if needed else None,
        total_size=size_of(files), card_summary=summary, label_names=labels[:20],
        private=bool(hf_info.private), gated=hf_info.gated or False,
        in_registry=registered.id if registered else None,
        registered_other_revision=None if registered else other)


def _card_summary(repo_id: str, *, sha: str, token) -> str:
    from huggingface_hub import hf_hub_download

    try:
        with hub_errors(repo_id, revision=sha, action="read", filename="README.md"):
            path = hf_hub_download(repo_id, "README.md", revision=sha, token=token)
        text = open(path, encoding="utf-8", errors="replace").read()
    except ImgaiError:
        return ""
    return card_summary(text)


def landing(*, limit: int = 30) -> SearchResult:
    """What the Browse tab shows before any search: whether the Hub is reachable (answered within
    a few seconds), and when it is not, the supported models in the local HF cache."""
    status = hub_status()
    if status.online:
        return SearchResult("", [], True, f"{status.message} Search the image classifiers of "
                                          f"{len(FAMILIES)} families ({', '.join(FAMILY_NAMES[:6])}, …).")
    from .cache import cached_models

    found = cached_models()[:limit]
    return SearchResult("", found, False, status.message + _none_cached(found, ""))


def _none_cached(found, query: str) -> str:
    """Offline with nothing to show: say so, rather than an empty table."""
    if found:
        return ""
    return " No models in the local cache" + (f" match {query!r}." if query else ".")
