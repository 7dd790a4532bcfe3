"""Download a supported model into the standard HF cache as a job, with byte progress, then
register it as PyTorch / NotConverted with `repo_id@commit` as its source.

Before any weight is fetched: the repo must be supported (config.json), and the files it needs
must fit on the disk. Only the needed files are fetched; a pickle never when safetensors exist.
An interrupted download resumes on retry (the HF cache keeps the `.incomplete` blob); nothing
is registered until every file is in place.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from ..job_context import JobContext
from .. import access, jobs, quotas, registry
from ..access import Actor
from ..errors import DiskSpaceError, HubUnavailableError
from ..log import get_logger
from . import auth
from .cache import add_cached, hf_cache_dir
from .client import REQUEST_TIMEOUT_S, hub_errors, hub_status
from ..hub_id import split_revision
from .search import _describe
from .support import RepoFile, human_size, plan_download, size_of

LOG = get_logger("imgai.hub")
TICK_S = 0.25


def download(repo_id: str, *, revision: str | None = None, token: auth.Token = None,
             actor: Actor | None = None) -> jobs.Job:
    """Queue a download job (`imgai hub download`). `token`: a str (a visitor's), None (the local
    login, inherited by the worker) or False (anonymous). A str travels in a 0600 file, never in
    the job's params. The model it registers belongs to the actor (shared for the local owner
    and admins); a visitor's download must fit their quotas, checked again once its size is known."""
    actor = access.check(actor, "hub.download")
    owner = actor.owner
    quotas.ensure_room(owner, 0, what=f"downloading {repo_id}")
    if "@" in repo_id and revision is None:
        repo_id, revision = split_revision(repo_id)
    else:
        split_revision(repo_id)
    params: dict = {"repo_id": repo_id, "revision": revision, "owner": owner}
    if token is False:
        params["anonymous"] = True
    elif isinstance(token, str) and token:
        params["token_file"] = auth.hand_over(token)
    try:
        return jobs.submit("download", params, subject=f"{repo_id}@{revision or 'main'}", owner=owner)
    except BaseException:
        auth.discard(params.get("token_file"))
        raise


def download_job(ctx: JobContext) -> dict:
    token: auth.Token = auth.take_over(ctx.params.get("token_file"))
    if token is None and ctx.params.get("anonymous"):
        token = False
    return fetch_and_register(ctx.params["repo_id"], revision=ctx.params.get("revision"), token=token,
                              progress=ctx.progress, event=ctx.event, owner=ctx.params.get("owner"))


def abort_job(job: jobs.Job, reason: str) -> None:
    """A download died or was cancelled: its handed-over token must not outlive it. The partial
    blob stays in the HF cache, so the next attempt resumes."""
    auth.discard(job.params.get("token_file"))


def fetch_and_register(repo_id: str, *, revision: str | None = None, token: auth.Token = None,
                       progress: Callable[..., None] = lambda *a, **k: None,
                       event: Callable[..., None] = lambda *a, **k: None, owner: str | None = None) -> dict:
    """The body of a download job (also callable directly); registers the model for `owner`."""
    progress(0.0, f"asking the Hub about {repo_id}")
    status = hub_status(timeout=REQUEST_TIMEOUT_S)   # a job may wait as long as one request; a page may not
    if not status.online:
        return _from_cache_instead(repo_id, revision, owner, HubUnavailableError(
            f"cannot download {repo_id}: {status.reason}, and no complete copy of it is in the local HF cache "
            f"({hf_cache_dir()}); connect and retry"), progress)
    try:
        model, info, files, _ = _describe(repo_id, sha=None, revision=revision, token=token)
    except HubUnavailableError as exc:
        return _from_cache_instead(repo_id, revision, owner, exc, progress)
    source = f"{repo_id}@{info.sha}"
    existing = registry.find_by_source(source, owner=owner)
    if existing:
        progress(1.0, f"already registered as {existing.id}")
        return {"model_id": existing.id, "source": source, "already_registered": True, "bytes": 0}
    plan = plan_download(files, library=model.library)
    total = size_of(plan) or 0
    storage = hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    missing = max(0, total - _bytes_present(storage, info.sha, plan))
    what = f"{repo_id} ({len(plan)} files, {human_size(total)})"
    quotas.check_download(owner, total, what=what)
    quotas.ensure_room(owner, missing, what=f"downloading {what}", folder=hf_cache_dir())
    check_free_space(missing, hf_cache_dir(), what=what)
    event(f"downloading {len(plan)} files, {human_size(total)}", data={
        "bytes_total": total, "files": [{"path": f.path, "size": f.size} for f in plan]})
    snapshot = _fetch(repo_id, info.sha, plan, storage=storage, token=token, total=total, progress=progress)
    progress(1.0, "registering")
    from ..sources import add_folder

    quotas.ensure_room(owner, 0, what=f"registering {repo_id}", folder=hf_cache_dir())
    registered = add_folder(snapshot, source=source, name=repo_id.split("/")[-1], copy=False, owner=owner)
    hub_meta = {"repo_id": repo_id, "commit": info.sha, "license": model.license, "gated": model.gated}
    registered = registry.update(registered.id, extra={**registered.extra, "hub": hub_meta,
                                                       "license": registered.extra.get("license") or model.license})
    LOG.info("downloaded %s (%s) and registered it as %s", source, human_size(total), registered.id)
    return {"model_id": registered.id, "source": source, "already_registered": False, "bytes": total,
            "path": str(snapshot)}


def _from_cache_instead(repo_id, revision, owner, exc, progress) -> dict:
    from .cache import find_snapshot

    found = find_snapshot(repo_id, revision)
    if found is None:
        raise exc
    progress(0.9, "the Hub is unreachable; registering the copy in the local HF cache")
    model = add_cached(repo_id, revision=revision, owner=owner)
    return {"model_id": model.id, "source": model.source, "already_registered": False, "bytes": 0,
            "from_cache": True}


def check_free_space(needed: int, folder: Path, *, what: str) -> None:
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    margin = 50_000_000   # room for the registry, logs and the converted model's temp files
    if needed + margin > free:
        raise DiskSpaceError(f"not enough disk space to download {what}: it needs {human_size(needed)} more in "
                             f"{folder} but only {human_size(free)} is free; free some space or point HF_HOME "
                             "at a bigger disk")


def _blob_bytes(storage: Path, commit: str, f: RepoFile) -> int:
    if (storage / "snapshots" / commit / f.path).exists():
        return f.size or 0
    if f.etag:
        blob = storage / "blobs" / f.etag
        if blob.exists():
            return f.size or 0
        part = blob.with_name(blob.name + ".incomplete")
        if part.exists():
            return part.stat().st_size
    return 0


def _bytes_present(storage: Path, commit: str, plan: list[RepoFile]) -> int:
    return sum(_blob_bytes(storage, commit, f) for f in plan)


def _fetch(repo_id: str, commit: str, plan: list[RepoFile], *, storage: Path, token, total: int,
           progress) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()   # the job reports bytes itself
    stop = threading.Event()

    def watch() -> None:
        last = -1.0
        while not stop.wait(TICK_S):
            done = _bytes_present(storage, commit, plan)
            fraction = done / total if total else 0.0
            if fraction - last >= 0.005:
                progress(min(fraction, 0.999))
                last = fraction

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    snapshot = None
    try:
        for i, f in enumerate(plan, 1):
            progress(_bytes_present(storage, commit, plan) / total if total else 0.0,
                     f"downloading {f.path} ({human_size(f.size)}), file {i} of {len(plan)}, "
                     f"{human_size(total)} in all")
            t0 = time.time()
            try:
                with hub_errors(repo_id, revision=commit, action="download", filename=f.path):
                    path = Path(hf_hub_download(repo_id, f.path, revision=commit, token=token,
                                                cache_dir=hf_cache_dir()))
            except HubUnavailableError as exc:
                got = human_size(_blob_bytes(storage, commit, f))
                raise HubUnavailableError(f"the connection to the Hub was lost while downloading {f.path} of "
                                          f"{repo_id} ({got} of {human_size(f.size)}); run the download again "
                                          "and it resumes where it stopped") from exc
            except OSError as exc:
                if "Consistency check failed" not in str(exc):
                    raise
                raise HubUnavailableError(f"the download of {f.path} from {repo_id} ended early; run it again "
                                          "and it resumes where it stopped") from exc
            LOG.info("fetched %s/%s (%s) in %.1fs", repo_id, f.path, human_size(f.size), time.time() - t0)
            snapshot = path.parent if "/" not in f.path else snapshot
    finally:
        stop.set()
        watcher.join(timeout=2)
    return snapshot or storage / "snapshots" / commit
