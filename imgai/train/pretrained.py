"""ImageNet starting weights from the Hub, for fine-tuning.

Every training architecture names its weights repo (`timm/<arch>.<tag>`, in
imgai.train.architectures). When a model is created, the weights are looked for in the local
Hugging Face cache; else, with the Hub reachable, a "weights" job downloads `model.safetensors`
and `config.json` (safetensors only, never a pickle) into the HF cache with byte progress,
through the same fetch the model download job uses, and checks that every tensor fits the
architecture; offline, training starts from scratch and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..job_context import JobContext
from .. import jobs
from ..errors import ConfigError, UnsupportedModelError
from ..log import get_logger
from .architectures import TrainArchitecture, get_architecture, starting_weights

KIND = "weights"
FILES = ("model.safetensors", "config.json")
LOG = get_logger("imgai.train.pretrained")


@dataclass
class WeightsPlan:
    """What a new model will start from."""
    state: str               # "cached" | "downloading" | "offline" | "scratch" (model_args change the network)
    repo_id: str | None
    job_id: str | None
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_weights(architecture: str, *, model_args: dict | None = None, owner: str | None = None) -> WeightsPlan:
    """Find (or start downloading) the ImageNet weights a new model of `architecture` starts from."""
    from ..hub.client import hub_status

    arch = get_architecture(architecture)
    weights = starting_weights(arch, model_args=model_args)
    if weights.pretrained:
        return WeightsPlan("cached", weights.source or arch.weights_repo, None, weights.describe())
    if model_args:
        return WeightsPlan("scratch", None, None, weights.describe())
    status = hub_status()
    if not status.online:
        return WeightsPlan("offline", arch.weights_repo, None,
                           f"{status.reason}: {arch.weights_repo} is not in the local HF cache, so training "
                           "will start from scratch (random init)")
    job = active_download(arch.weights_repo) or jobs.submit(
        KIND, {"repo_id": arch.weights_repo, "architecture": arch.key}, subject=arch.weights_repo, owner=owner)
    return WeightsPlan("downloading", arch.weights_repo, job.id,
                       f"downloading the ImageNet weights {arch.weights_repo} (job {job.id}); a training job "
                       "started meanwhile waits for it")


def active_download(repo_id: str) -> jobs.Job | None:
    return next((j for j in jobs.list_jobs(kind=KIND, states=jobs.ACTIVE) if j.subject == repo_id), None)


def weights_job(ctx: JobContext) -> dict:
    """Download a weights repo's model.safetensors + config.json into the HF cache, then check
    that its tensors fit the architecture (Failed, naming the first that does not)."""
    from ..hub.cache import hf_cache_dir
    from ..hub.client import api, hub_errors
    from ..hub.download import _fetch, check_free_space
    from ..hub.support import human_size, size_of, to_repo_files

    repo_id, arch = ctx.params["repo_id"], get_architecture(ctx.params["architecture"])
    ctx.progress(0.0, f"asking the Hub about {repo_id}")
    with hub_errors(repo_id, action="download"):
        info = api().model_info(repo_id, files_metadata=True)
    files = {f.path: f for f in to_repo_files(info.siblings)}
    if "model.safetensors" not in files:
        raise UnsupportedModelError(f"{repo_id} has no model.safetensors; imgai takes starting weights as "
                                    "safetensors only (never a pickle)")
    plan = [files[name] for name in FILES if name in files]
    total = size_of(plan) or 0
    check_free_space(total, hf_cache_dir(), what=f"{repo_id} ({human_size(total)})")
    ctx.event(f"downloading {repo_id} at {info.sha[:12]}: {human_size(total)}",
              data={"repo_id": repo_id, "commit": info.sha, "bytes_total": total})
    storage = hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    snapshot = _fetch(repo_id, info.sha, plan, storage=storage, token=None, total=total, progress=ctx.progress)
    ctx.progress(1.0, "checking the tensors fit " + arch.timm_name)
    check_fit(arch, snapshot / "model.safetensors", repo_id=repo_id)
    _point_main_at(storage, info.sha)
    LOG.info("weights %s@%s ready for %s", repo_id, info.sha, arch.key)
    return {"repo_id": repo_id, "commit": info.sha, "path": str(snapshot / "model.safetensors"), "bytes": total}


def _point_main_at(storage: Path, commit: str) -> None:
    """refs/main → this commit, as the Hub client records a download of `main`, so the cache
    lookup (`try_to_load_from_cache`) finds the weights; written only once they are checked."""
    from ..staging import write_text

    write_text(storage / "refs" / "main", commit)


def check_fit(arch: TrainArchitecture, path: Path, *, repo_id: str | None = None) -> None:
    """Every tensor of the network's body is in the file with the same shape (the classifier head
    is replaced anyway); raises ConfigError naming the first one that is not."""
    import timm
    import torch

    from .architectures import body_mismatches, read_state_dict

    with torch.device("meta"):
        model = timm.create_model(arch.timm_name, pretrained=False)
    problems = body_mismatches(model, read_state_dict(path))
    if problems:
        raise ConfigError(f"the weights in {repo_id or path} do not fit {arch.timm_name}: first mismatching tensor "
                          f"{problems[0]} ({len(problems)} in all)")


def wait_for_download(repo_id: str, *, on_wait=None) -> str | None:
    """Block while a weights job for `repo_id` runs (a training job that started meanwhile);
    returns why it did not succeed, or None."""
    job = active_download(repo_id)
    if job is None:
        return None
    if on_wait:
        on_wait(job)
    done = jobs.wait(job.id)
    return None if done.state == jobs.SUCCEEDED else f"the weights download job {job.id} {done.state}: {done.error}"
