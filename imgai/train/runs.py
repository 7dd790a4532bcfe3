"""Training jobs as users see them: start, resume, retrain, cancel, and the views of a run
(epoch ratio, curves, throughput, per-class accuracy). Every setting and the data are checked
here, before anything is queued."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import access, jobs, quotas, registry
from ..access import Actor
from ..errors import ConfigError, StateError, UnknownModelError
from ..jobs import Job
from .architectures import get_architecture
from .config import TrainConfig
from .data import DataPipeline, DataReport, check_data, get_pipeline, resolve_data
from .job import EPOCH_EVENT, HISTORY_EVENT
from .models import TRAINING, archive_run, fork_for_retraining, reserve_run, resolve_model
from .stage import parse_epoch_stage

KIND = "train"
RESUMABLE = (jobs.FAILED, jobs.CANCELLED)      # the states a training job can be resumed from


def _active_job_for(model_id: str) -> Job | None:
    return jobs.active_job(model_id, KIND)


def _checked(pipeline: DataPipeline, config: TrainConfig) -> DataReport:
    report = check_data(pipeline.root, multi_label=config.loss == "bce")
    report.raise_for_problems()
    return report


def start(model: str, *, data: str | Path | DataPipeline, config: TrainConfig | None = None,
          actor: Actor | None = None, retrain_of: str | None = None, dispatch: bool = True) -> Job:
    """Queue a training job for `model` (name or id) on `data` (a pipeline name, folder or
    pipeline). Bad settings, unusable data, a model or data the actor may not use, and a visitor's
    quotas fail here, before the job exists. The job belongs to the model's owner. With
    `dispatch=False` the job waits in the queue until the next dispatch (tests, benchmarks)."""
    target = resolve_model(model)
    access.check(actor, "train.start", target)
    config = config or TrainConfig()
    pipeline = data if isinstance(data, DataPipeline) else resolve_data(data, actor=actor)
    access.check(actor, "data.use", pipeline)
    limits = quotas.training_limits(target.owner, config.epochs)
    quotas.ensure_room(target.owner, 0, what=f"training {target.id}")
    report = _checked(pipeline, config)
    busy = _active_job_for(target.id)
    if busy:
        raise StateError(f"model {target.id!r} already has training job {busy.id} {busy.state}; "
                         f"wait for it or cancel it (`imgai train cancel {busy.id}`)")
    if target.type == registry.ONNX:
        target = fork_for_retraining(target)
    extra = target.extra or {}
    arch = get_architecture(extra.get("train_architecture") or target.architecture)
    run = reserve_run(target.id)
    params = {
        "model_id": target.id, "run": run, "architecture": arch.key, "model_args": extra.get("model_args") or {},
        "data": pipeline.to_dict(), "config": config.to_dict(), "labels": report.labels,
        "exclude": [rel for rel, _ in report.unreadable], "data_counts": report.counts,
        "data_warnings": report.warnings, "resume": False, "resumed_from": None, "retrain_of": retrain_of,
        "limits": limits,
    }
    return jobs.submit(KIND, params, subject=target.id, owner=target.owner, start=dispatch,
                       before_queue=lambda job_id: registry.update(target.id, training=TRAINING))


def resume(job_id: str, *, actor: Actor | None = None, dispatch: bool = True) -> Job:
    """Continue a failed or cancelled run from its last epoch checkpoint (same run number)."""
    old = _train_job(job_id)
    access.check(actor, "train.resume", old)
    if old.state not in RESUMABLE:
        raise StateError(f"job {job_id} is {old.state}; only a failed or cancelled training job can be resumed")
    busy = _active_job_for(old.subject)
    if busy:
        raise StateError(f"model {old.subject!r} already has training job {busy.id} {busy.state}")
    if resolve_model(old.subject).type == registry.ONNX:
        raise StateError(f"model {old.subject!r} was converted to ONNX after job {job_id} stopped; its checkpoint "
                         f"cannot continue into it: retrain instead (`imgai train retrain {job_id}`)")
    pipeline = DataPipeline(**old.params["data"])
    config = TrainConfig.from_dict(old.params["config"])
    report = _checked(pipeline, config)
    if report.labels != old.params["labels"]:
        raise StateError(f"the classes in {pipeline.root} changed since job {job_id} ran ({old.params['labels']} → "
                         f"{report.labels}); the checkpoint cannot continue: retrain instead")
    quotas.ensure_room(old.owner, 0, what=f"resuming job {job_id}")
    params = dict(old.params, resume=True, resumed_from=old.id,
                  limits=quotas.training_limits(old.owner, config.epochs))
    return jobs.submit(KIND, params, subject=old.subject, owner=old.owner,
                       start=dispatch, before_queue=lambda _: registry.update(old.subject, training=TRAINING))


def retrain(job_id: str, *, data: str | Path | DataPipeline | None = None, actor: Actor | None = None,
            dispatch: bool = True, **changes) -> Job:
    """A new run (a new version) from an earlier job's settings, with `changes` applied."""
    old = _train_job(job_id)
    access.check(actor, "train.retrain", old)
    config = TrainConfig.from_dict(old.params["config"]).replace(**changes)
    if data is None:
        snapshot = DataPipeline(**old.params["data"])
        try:
            data = get_pipeline(snapshot.name)
        except ConfigError:            # the pipeline was removed since: its snapshot in the job still works
            data = snapshot
    return start(old.subject, data=data, config=config, actor=actor, retrain_of=old.id, dispatch=dispatch)


def cancel(job_id: str, *, actor: Actor | None = None) -> Job:
    _train_job(job_id)
    return jobs.cancel(job_id, actor=actor)


def _train_job(job_id: str) -> Job:
    job = jobs.get(job_id)
    if job.kind != KIND:
        raise StateError(f"job {job_id} is a {job.kind} job, not a training job; see `imgai train list`")
    return job


def list_training(*, states: tuple[str, ...] | None = None, owner: str | None = None,
                  actor: Actor | None = None, limit: int = 200) -> list[Job]:
    return jobs.list_jobs(kind=KIND, states=states, owner=owner, actor=actor, limit=limit)


def latest_job_for(model: str) -> Job:
    target = resolve_model(model)
    found = [j for j in list_training() if j.subject == target.id]
    if not found:
        raise StateError(f"model {target.id!r} has no training job yet; start one with `imgai train start`")
    return found[0]


# -- views ------------------------------------------------------------------------------

def curves(job_id: str) -> list[dict]:
    """Per-epoch metrics of a run, oldest first, earlier epochs of a resumed run included: the
    history its checkpoint held when the job resumed, then each epoch the job reported (each
    reported only once its checkpoint was on disk), so every epoch appears exactly once."""
    history: list[dict] = []
    for event in jobs.events(job_id):
        data = event.get("data") or {}
        if data.get("kind") == HISTORY_EVENT:
            history = [dict(h) for h in data["history"]]
        elif data.get("kind") == EPOCH_EVENT:
            point = {k: v for k, v in data.items() if k != "kind"}
            history = [h for h in history if h["epoch"] < point["epoch"]] + [point]
    return history


@dataclass
class TrainingView:
    job_id: str
    model_id: str
    model_name: str
    architecture: str
    data: str
    state: str
    epoch_ratio: str          # "3/10": the epoch in progress (or done) of all epochs
    progress: float
    samples_per_s: float | None
    train_loss: float | None
    val_accuracy: float | None
    starting_weights: str | None   # repo@revision of the Hub weights, else the kind (demo, scratch, …)
    error: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def view(job: Job | str) -> TrainingView:
    job = jobs.get(job) if isinstance(job, str) else job
    p = job.params
    epochs = int(p["config"]["epochs"])
    history = curves(job.id)
    done = history[-1]["epoch"] if history else 0
    running = parse_epoch_stage(job.stage) if job.state == jobs.RUNNING else None
    if running:
        current = str(running[0])
    elif job.state == jobs.SUCCEEDED:
        current = str(epochs)
    else:
        current = str(done)
    started = next((e["data"] for e in jobs.events(job.id) if e.get("data") and "starting_weights" in e["data"]), {})
    # where the weights came from: the Hub repo@revision when known (as `train show` and the card say)
    weights = started.get("starting_weights_source") or started.get("starting_weights")
    try:
        name = registry.get(job.subject).name
    except UnknownModelError:          # the model was removed; its jobs stay listed
        name = job.subject or ""
    last = history[-1] if history else {}
    return TrainingView(job_id=job.id, model_id=job.subject or "", model_name=name, architecture=p["architecture"],
                        data=p["data"]["name"], state=job.state, epoch_ratio=f"{current}/{epochs}",
                        progress=job.progress, samples_per_s=last.get("samples_per_s"),
                        train_loss=last.get("train_loss"), val_accuracy=last.get("val_accuracy"),
                        starting_weights=weights, error=job.error, created_at=job.created_at,
                        started_at=job.started_at, ended_at=job.ended_at)


def download(job_id: str, *, actor: Actor | None = None) -> Path:
    """The trained model of a finished job, zipped (config.json + model.safetensors), in a fresh
    folder of the actor's own (imgai/files.py)."""
    from ..files import new_folder

    job = _train_job(job_id)
    access.check(actor, "train.download", job)
    if job.state != jobs.SUCCEEDED or not job.result:
        raise StateError(f"job {job_id} is {job.state}; only a completed training job has a model to download")
    return archive_run(job.result["pytorch_path"], name=f"{job.result['model_id']}-run{job.result['run']}",
                       out_dir=new_folder(actor, "model-"))
