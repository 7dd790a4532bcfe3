"""Training on Ray: Ray Train's TorchTrainer runs the very `fit` a local job runs, in `workers`
processes with DistributedDataParallel (gloo on CPU, nccl on CUDA).

The job process stays in charge of everything that touches imgai's data folder: the model and
the datasets go to the workers through the object store, and the first worker sends back what
the local loop would have written or reported — each epoch's metrics and checkpoint, progress,
and at the end the trained weights — through a Ray queue. So checkpoints, the epoch ratio,
curves and the registry hand-off are exactly those of a local job, and Resume works the same.
The training images are read where the workers run: on a cluster, a folder every node sees.
"""

from __future__ import annotations

import queue as queue_errors
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import JobError
from ..job_context import check_cancelled
from ..log import get_logger
from ..train.config import TrainConfig
from ..train.loop import EpochMetrics, FitResult, _write_checkpoint, load_checkpoint
from . import RAY_TRAIN_WORKERS
from .ray_session import ray_session, require_ray

LOG = get_logger("imgai.engines.ray_train")
BATCH_REPORT_S = 1.0       # the first worker reports batch progress at most this often


def train_worker(cfg: dict) -> None:
    """Each Ray Train worker: prepare DDP, then the local engine's `fit` on this worker's shard."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from ..train.loop import fit, seed_everything

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    config: TrainConfig = cfg["config"]
    torch.set_num_threads(cfg["threads"])
    seed_everything(config.seed)
    model = ray.get(cfg["model"][0])
    train_set, val_set = ray.get(cfg["data"][0])
    resume_state = ray.get(cfg["resume_state"][0]) if cfg["resume_state"] else None
    model = ray.train.torch.prepare_model(model)
    out = cfg["queue"]
    first = rank == 0
    last = [0.0]

    def on_batch(epoch: int, i: int, batches: int) -> None:
        if i == 1 or time.monotonic() - last[0] > BATCH_REPORT_S:
            last[0] = time.monotonic()
            out.put(("batch", (epoch, i, batches)))

    result = fit(model, train_set, val_set, config, num_classes=cfg["num_classes"], multi_label=cfg["multi_label"],
                 resume=resume_state is not None, resume_state=resume_state, shard=(rank, world),
                 on_epoch=(lambda m: out.put(("epoch", m.to_dict()))) if first else None,
                 on_batch=on_batch if first else None,
                 on_checkpoint=(lambda state: out.put(("checkpoint", state))) if first else None)
    if first:
        core = model.module if hasattr(model, "module") else model
        out.put(("done", {"result": result.__dict__, "state": core.state_dict()}))


def fit_on_ray(model, train_set, val_set, config: TrainConfig, *, num_classes: int, multi_label: bool = False,
               checkpoint: Path | None = None, resume: bool = False, resume_state: dict | None = None,
               on_epoch: Callable[[EpochMetrics], None] | None = None,
               on_batch: Callable[[int, int, int], None] | None = None) -> FitResult:
    """`imgai.train.loop.fit` on Ray: the same arguments, the same result, `model` trained in place."""
    require_ray()
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Queue

    if resume and resume_state is None and checkpoint is not None and checkpoint.is_file():
        resume_state = load_checkpoint(checkpoint)
    resume_state = resume_state if resume else None
    use_gpu = config.resolved_device() == "cuda"
    workers = config.engine.workers or RAY_TRAIN_WORKERS
    with ray_session(config.engine.address) as session, tempfile.TemporaryDirectory(prefix="imgai-ray-train-") as storage:
        cpus = min(int(n["Resources"]["CPU"]) for n in session["nodes"]) if session["nodes"] else 1
        threads = max(1, cpus // max(1, -(-workers // max(1, len(session["nodes"])))))
        out = Queue()
        cfg = {"config": config, "num_classes": num_classes, "multi_label": multi_label, "threads": threads,
               "model": [ray.put(model)], "data": [ray.put((train_set, val_set))],
               "resume_state": [ray.put(resume_state)] if resume_state is not None else None, "queue": out}
        trainer = TorchTrainer(
            train_worker, train_loop_config=cfg,
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
            run_config=RunConfig(name="imgai-train", storage_path=storage,
                                 failure_config=FailureConfig(max_failures=0)))
        LOG.info("training on Ray: %d workers, %d threads each, %s", workers, threads,
                 "nccl" if use_gpu else "gloo")
        failure: list[BaseException] = []
        runner = threading.Thread(target=lambda: _fit_trainer(trainer, failure), name="imgai-ray-train", daemon=True)
        runner.start()
        done = _follow(out, runner, checkpoint=checkpoint, on_epoch=on_epoch, on_batch=on_batch)
        runner.join()
        if failure or done is None:
            reason = (str(failure[0]).strip().splitlines() or ["no result"])[0][:300] if failure else "no result"
            raise JobError(f"training on Ray failed: {reason}") from (failure[0] if failure else None)
    model.load_state_dict(done["state"])
    model.to("cpu").eval()
    return FitResult(**done["result"])


def _fit_trainer(trainer, failure: list) -> None:
    try:
        trainer.fit()
    except BaseException as exc:      # reported by the job thread
        failure.append(exc)


def _follow(out, runner: threading.Thread, *, checkpoint, on_epoch, on_batch) -> dict | None:
    """Relay what the first worker sends until the trainer ends; returns its final message."""
    done = None
    while True:
        try:
            kind, payload = out.get(timeout=0.5)
        except queue_errors.Empty:
            check_cancelled()           # a cancel while Ray starts its workers, or between reports
            if not runner.is_alive():
                if out.empty():
                    return done
            continue
        if kind == "batch" and on_batch:
            on_batch(*payload)
        elif kind == "epoch" and on_epoch:
            on_epoch(EpochMetrics(**payload))
        elif kind == "checkpoint" and checkpoint is not None:
            _write_checkpoint(checkpoint, payload)
        elif kind == "done":
            done = payload
