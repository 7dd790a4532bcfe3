"""The "train" job kind: what the worker process runs, and how a stopped run is put right.

Params (written by imgai.train.runs): model_id, run, architecture, model_args, data (a data
pipeline), config (a TrainConfig), labels, exclude (unreadable files), resume.
"""

from __future__ import annotations

import dataclasses
import shutil
import time

from ..errors import DataError
from ..quotas import check_training
from .architectures import StartingWeights, build_model, get_architecture, starting_weights
from .config import TrainConfig
from .data import DataPipeline
from .pretrained import wait_for_download
from .models import TRAINING, checkpoint_path, register_run, save_run, settle_after_abort
from .stage import epoch_stage

# What a training job's events carry in `data["kind"]`; `runs.curves` reads a run's history back
# from them: the history its checkpoint held when the job resumed, then each epoch, reported
# only once that epoch's checkpoint is on disk.
HISTORY_EVENT, EPOCH_EVENT = "history", "epoch"


def train_job(ctx) -> dict:
    """The worker's entry. Training checks for a cancel at every batch and report, so a cancel is
    raised only there (job_context.checked_cancel), never inside library code mid-step."""
    from ..job_context import checked_cancel

    with checked_cancel():
        return _train(ctx)


def _train(ctx) -> dict:
    from .. import registry
    from .images import datasets
    from ..engines import work_function
    from .loop import load_checkpoint, seed_everything

    p = ctx.params
    model_id, run = p["model_id"], int(p["run"])
    config = TrainConfig.from_dict(p["config"])
    arch = get_architecture(p["architecture"])
    model_args = p.get("model_args") or {}
    pipeline = DataPipeline(**p["data"])
    pipeline = dataclasses.replace(pipeline, **{k: getattr(config, k) for k in ("flip", "crop")
                                                if getattr(config, k) is not None})
    multi_label = config.loss == "bce"
    image_size = config.image_size or pipeline.image_size
    val_split = pipeline.val_split if config.val_split is None else config.val_split
    registry.update(model_id, training=TRAINING)

    ckpt = checkpoint_path(model_id, run)
    resume_state = load_checkpoint(ckpt) if p.get("resume") and ckpt.is_file() else None
    resume = resume_state is not None
    if config.pretrained and not model_args and not resume:
        problem = wait_for_download(arch.weights_repo, on_wait=lambda job: ctx.progress(
            0.0, f"waiting for the ImageNet weights download (job {job.id})"))
        if problem:
            ctx.event(problem, level="warning")
    weights = (starting_weights(arch, model_args=model_args, build=True) if config.pretrained
               else StartingWeights("scratch", None))
    if resume:
        ctx.event(f"resuming run {run} from its checkpoint after epoch {resume_state['epoch']}",
                  data={"resume": True, "kind": HISTORY_EVENT, "history": list(resume_state["history"])})
    elif p.get("resume"):
        ctx.event(f"no checkpoint for run {run} yet: starting it from epoch 1", level="warning")
    ctx.event(weights.describe(), level="info" if weights.pretrained else "warning",
              data={"starting_weights": weights.kind, "pretrained": weights.pretrained,
                    "starting_weights_source": weights.source})

    ctx.progress(0.0, "reading data")
    seed_everything(config.seed)
    samples, train_set, val_set = datasets(pipeline, image_size=image_size, val_split=val_split, seed=config.seed,
                                           mean=weights.mean, std=weights.std, multi_label=multi_label,
                                           exclude=frozenset(p.get("exclude") or ()))
    if samples.labels != p["labels"]:
        raise DataError(f"the classes in {pipeline.root} changed since this job was queued "
                        f"({p['labels']} → {samples.labels}); start a new training job")
    ctx.event(f"data: {len(train_set)} training and {len(val_set)} validation images in {len(samples.labels)} classes",
              data={"train_images": len(train_set), "val_images": len(val_set), "classes": samples.labels})

    ctx.progress(0.0, "building model")
    model = build_model(arch, len(samples.labels), model_args=model_args, weights=None if resume else weights,
                        image_size=image_size)
    epochs = config.epochs
    last_report = [0.0]
    started = time.monotonic()

    def on_batch(epoch: int, i: int, batches: int) -> None:
        ctx.check()
        fraction = (epoch - 1 + i / batches) / epochs
        if i == 1:
            ctx.progress(fraction, epoch_stage(epoch, epochs))
            last_report[0] = time.monotonic()
        elif time.monotonic() - last_report[0] > 1.0:
            ctx.progress(fraction)
            last_report[0] = time.monotonic()

    def on_epoch(m) -> None:
        ctx.progress(m.epoch / epochs)
        ctx.event(f"{epoch_stage(m.epoch, epochs)}: train loss {m.train_loss:.4f}, "
                  + (f"val accuracy {m.val_accuracy:.1%}, " if m.val_accuracy is not None else "")
                  + f"{m.samples_per_s:.0f} samples/s", data={"kind": EPOCH_EVENT, **m.to_dict()})
        # a visitor's wall time, and room for the next checkpoint (imgai/quotas.py)
        check_training(p.get("limits"), time.monotonic() - started, owner=ctx.job.owner, what=f"training {model_id}")

    fit = work_function("train", config.engine)   # local: the loop here; ray: the same loop in DDP processes
    result = fit(model, train_set, val_set, config, num_classes=len(samples.labels), multi_label=multi_label,
                 checkpoint=ckpt, resume=resume, resume_state=resume_state, on_epoch=on_epoch, on_batch=on_batch)

    kept = next((h for h in result.history if h["epoch"] == result.best_epoch), None)
    if kept is not None and kept["val_accuracy"] is not None:
        ctx.event(f"kept the weights of epoch {result.best_epoch} of {epochs}, the best on validation "
                  f"(accuracy {kept['val_accuracy']:.1%}, loss {kept['val_loss']:.4f})",
                  data={"best_epoch": result.best_epoch})
    if result.feed:
        ctx.event(f"trained on {config.resolved_device()} in {result.precision}; {result.feed}",
                  data={"precision": result.precision, "feed": result.feed})
    ctx.progress(1.0, "saving model")
    run_dir = save_run(model, model_id=model_id, run=run, timm_name=arch.timm_name, labels=samples.labels,
                       image_size=image_size, mean=weights.mean, std=weights.std,
                       model_args=arch.build_args(image_size, model_args),   # what Convert rebuilds it with
                       multi_label=multi_label)
    final = kept or (result.history[-1] if result.history else {})
    summary = {"job_id": ctx.id, "val_accuracy": final.get("val_accuracy"), "epochs": epochs,
               "data": pipeline.name, "starting_weights": weights.kind, "starting_weights_source": weights.source,
               "best_epoch": result.best_epoch}
    register_run(model_id, run, run_dir, summary)
    shutil.rmtree(ckpt.parent, ignore_errors=True)     # a finished run needs no checkpoint (nor its optimizer state)
    per_class = dict(zip(samples.labels, result.per_class_accuracy))
    return {
        "model_id": model_id, "run": run, "pytorch_path": str(run_dir), "labels": samples.labels,
        "epochs": epochs, "history": result.history, "val_accuracy": final.get("val_accuracy"),
        "train_accuracy": final.get("train_accuracy"), "per_class_accuracy": per_class,
        "confusion_matrix": result.confusion_matrix, "samples_per_s": round(result.samples_per_s, 2),
        "starting_weights": weights.kind, "starting_weights_source": weights.source,
        "best_epoch": result.best_epoch, "resumed_from_epoch": result.resumed_from_epoch,
        "train_images": len(train_set), "val_images": len(val_set), "multi_label": multi_label,
        "precision": result.precision, "feed": result.feed,
    }


def abort_job(job, reason: str) -> None:
    """The job was cancelled, failed or died: the model goes back to its last finished run."""
    model_id = (job.params or {}).get("model_id") or job.subject
    if model_id:
        settle_after_abort(model_id, reason)
