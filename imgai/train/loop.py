"""The training loop: epochs of train + validate, a checkpoint after each, metrics out.

Plain PyTorch, nothing hidden: batches (train.feed: the decoded-image cache or a DataLoader), an
Adam/AdamW optimizer, cross-entropy (or BCE for multi-label), `model.train()` / `model.eval()`,
autocast in the run's precision, channels_last for CNNs on a GPU. Loss and accuracy add up on
the device and are read once per epoch (no host synchronisation per batch). The caller
(imgai.train.job) wires the callbacks to the job system; this file does not know about jobs,
the registry or the UI.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .config import TrainConfig


@dataclass
class EpochMetrics:
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    samples_per_s: float
    seconds: float
    lr: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    history: list[dict]
    confusion_matrix: list[list[int]] | None   # [true][predicted], validation set, last epoch
    per_class_accuracy: list[float | None]     # validation accuracy per class (None: no val images)
    resumed_from_epoch: int
    samples_per_s: float                       # training samples per second over this run's epochs
    precision: str = "fp32"                    # fp32 | bf16 | fp16 (autocast), as resolved for the device
    feed: str = ""                             # how batches were made (decoded-image cache, or streaming)
    best_epoch: int | None = None              # the epoch whose weights the model holds (best on validation)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model, config: TrainConfig):
    import torch

    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[config.optimizer]
    return cls(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
               weight_decay=config.weight_decay)


def make_loss(config: TrainConfig, multi_label: bool):
    import torch

    if multi_label:
        return torch.nn.BCEWithLogitsLoss()
    return torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)


def _hits(logits, targets, multi_label: bool):
    """Per-sample correctness: top-1 equals the class, or (multi-label) is one of its labels."""
    top1 = logits.argmax(dim=1)
    if multi_label:
        return targets.gather(1, top1[:, None]).squeeze(1) > 0.5
    return top1 == targets


def _better(metrics: dict, than: dict | None) -> bool:
    """Is this epoch better on validation: higher accuracy, or as accurate with a lower loss?"""
    if metrics.get("val_accuracy") is None:
        return than is None or than.get("val_accuracy") is None     # no validation: the latest epoch
    if than is None or than.get("val_accuracy") is None:
        return True
    if metrics["val_accuracy"] != than["val_accuracy"]:
        return metrics["val_accuracy"] > than["val_accuracy"]
    return (metrics.get("val_loss") or 0.0) < (than.get("val_loss") or 0.0)


def best_epoch(history: list[dict]) -> int | None:
    """The epoch of `history` with the best validation result (the first such), or None."""
    best = None
    for h in history:
        if _better(h, best):
            best = h
    return best["epoch"] if best else None


def _checkpoint_state(model, optimizer, epoch: int, history: list[dict], best: dict | None = None,
                      scaler: dict | None = None) -> dict:
    """A copy of the weights and optimizer state that training may go on changing meanwhile, and the
    fp16 loss scaler's state (`Amp.state_dict()`) when the run has one."""
    def snapshot(value):
        if hasattr(value, "detach"):
            return value.detach().clone()
        if isinstance(value, dict):
            return {k: snapshot(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(snapshot(v) for v in value)
        return value

    state = {"model": snapshot(model.state_dict()), "optimizer": snapshot(optimizer.state_dict()),
             "epoch": epoch, "history": [dict(h) for h in history]}
    if scaler is not None:
        state["scaler"] = dict(scaler)
    if best is not None:      # the best epoch's weights, when they are not this epoch's: {"epoch", "model"}
        state["best"] = best if best["epoch"] != epoch else {"epoch": epoch}
    return state


def _write_checkpoint(path: Path, state: dict) -> None:
    """Everything Resume needs, written to a temp file and renamed (a crash never leaves half a file).
    Only tensors and plain values: it reads back with torch.load(weights_only=True)."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    stop_here_for_tests(f"checkpoint-written:{state['epoch']}")
    os.replace(tmp, path)
    stop_here_for_tests(f"checkpoint-renamed:{state['epoch']}")


def stop_here_for_tests(point: str) -> None:
    """Test-only: with IMGAI_TEST_STOP_AT=<point> the process stops itself (SIGSTOP) there, so a
    test can kill it at exactly that moment. Points: checkpoint-written:<epoch> (temp file
    complete, not yet renamed), checkpoint-renamed:<epoch>, epoch-reported:<epoch>."""
    if os.environ.get("IMGAI_TEST_STOP_AT") == point:
        import signal
        import threading

        # sent to this thread, so it stops before its next instruction (not just "soon")
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)


class CheckpointWriter:
    """Commits each epoch: writes its checkpoint (the run's history included) in a background
    thread from a copy of the weights, so the next epoch does not wait for the disk, and only
    then reports the epoch (`on_saved(metrics)`). So whatever was reported is in a checkpoint on
    disk, whenever the process dies. At most one write is in flight; `close()` waits for it
    (also on cancel), so a stopped run leaves its latest checkpoint complete and reported;
    `finish()` also lets the thread go.

    One thread serves the whole run, started with the writer: a thread started per epoch could be
    hit by a cancel (SIGTERM → JobCancelled) inside `Thread.start()` itself, which left a thread
    that close() could not join, and the job failed ("cannot join thread before it is started")
    instead of being cancelled."""

    def __init__(self, path: Path | None, on_saved: Callable[[EpochMetrics], None] | None = None):
        import queue
        import threading

        self.path, self.on_saved, self._error = path, on_saved, None
        self._pending: queue.Queue = queue.Queue()
        if path is not None:
            threading.Thread(target=self._run, name="imgai-checkpoint", daemon=True).start()

    def save(self, metrics: EpochMetrics, *, model, optimizer, history: list[dict], best: dict | None = None,
             scaler: dict | None = None) -> None:
        self.close()
        if self.path is None:
            self._report(metrics)
            return
        self._pending.put((metrics, _checkpoint_state(model, optimizer, metrics.epoch, history, best, scaler)))

    def _run(self) -> None:
        while (item := self._pending.get()) is not None:
            metrics, state = item
            try:
                _write_checkpoint(self.path, state)
                self._report(metrics)
            except BaseException as exc:       # reported by close(), in the training thread
                self._error = exc
            finally:
                self._pending.task_done()
        self._pending.task_done()

    def _report(self, metrics: EpochMetrics) -> None:
        if self.on_saved:
            self.on_saved(metrics)
        stop_here_for_tests(f"epoch-reported:{metrics.epoch}")

    def close(self) -> None:
        self._pending.join()                   # the write in flight, if any
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def finish(self) -> None:
        try:
            self.close()
        finally:
            if self.path is not None:
                self._pending.put(None)        # the thread ends


def load_checkpoint(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def evaluate(model, loader, loss_fn, *, num_classes: int, multi_label: bool, device: str, amp=None) -> dict:
    """Validation over `loader` (batches already on `device`): sums stay on the device until the end."""
    import torch

    from .feed import Amp

    amp = amp or Amp(device, "fp32")
    model.eval()
    total = 0
    loss_sum = torch.zeros((), device=device)
    hits = torch.zeros((), dtype=torch.long, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
    label_hits = torch.zeros(num_classes, dtype=torch.long, device=device)   # multi-label: per-class accuracy at 0.5
    with torch.inference_mode():
        for images, targets in loader:
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with amp.autocast():
                logits = model(images)
                loss = loss_fn(logits, targets)
            loss_sum += loss.float() * len(images)
            hits += _hits(logits, targets, multi_label).sum()
            total += len(images)
            if multi_label:
                label_hits += ((logits > 0) == (targets > 0.5)).sum(dim=0)
            else:
                cells = targets * num_classes + logits.argmax(dim=1)   # scatter_add: no sync (bincount would)
                confusion.scatter_add_(0, cells, torch.ones_like(cells))
    if not total:
        return {"loss": None, "accuracy": None, "confusion": None, "per_class": [None] * num_classes}
    if multi_label:
        per_class = [h / total for h in label_hits.tolist()]
        matrix = None
    else:
        flat = confusion.tolist()
        matrix = [flat[i * num_classes:(i + 1) * num_classes] for i in range(num_classes)]
        per_class = [row[i] / sum(row) if sum(row) else None for i, row in enumerate(matrix)]
    return {"loss": float(loss_sum) / total, "accuracy": int(hits) / total, "confusion": matrix,
            "per_class": per_class}


def train_one_epoch(model, loader, optimizer, loss_fn, *, epoch: int, multi_label: bool, device: str,
                    on_batch: Callable[[int, int, int], None] | None = None, amp=None) -> tuple[int, int, float]:
    """One pass over the training data: (samples seen, correct top-1, summed loss). The sums stay on
    the device and are read once, at the end."""
    import torch

    from .feed import Amp

    amp = amp or Amp(device, "fp32")
    model.train()
    seen = 0
    loss_sum = torch.zeros((), device=device)
    hits = torch.zeros((), dtype=torch.long, device=device)
    batches = len(loader)
    for i, (images, targets) in enumerate(loader):
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with amp.autocast():
            logits = model(images)
            loss = loss_fn(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_step(loss, optimizer)
        n = len(images)
        seen += n
        loss_sum += loss.detach().float() * n
        hits += _hits(logits.detach(), targets, multi_label).sum()
        if on_batch:
            on_batch(epoch, i + 1, batches)
    return seen, int(hits), float(loss_sum)


def _sum_over_processes(*values: float) -> tuple:
    """The sums over every training process of a distributed run."""
    import torch
    import torch.distributed as dist

    total = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(total)
    return tuple(int(v) if isinstance(x, int) else float(v) for x, v in zip(values, total.tolist()))


def _average_batchnorm_statistics(model) -> None:
    """BatchNorm running statistics averaged over every process (each saw only its share of the
    data), as timm's `distribute_bn(reduce=True)` does: validation and the saved model use them."""
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            for buf in (module.running_mean, module.running_var):
                if buf is not None:
                    dist.all_reduce(buf)
                    buf /= world


def fit(model, train_set, val_set, config: TrainConfig, *, num_classes: int, multi_label: bool = False,
        checkpoint: Path | None = None, resume: bool = False,
        on_epoch: Callable[[EpochMetrics], None] | None = None,
        on_batch: Callable[[int, int, int], None] | None = None,
        shard: tuple[int, int] | None = None, resume_state: dict | None = None,
        on_checkpoint: Callable[[dict], None] | None = None) -> FitResult:
    """Train `model` for `config.epochs` epochs; with `resume`, continue from `checkpoint`
    (or from `resume_state`, a checkpoint already read).

    `on_batch(epoch, batch_index, batches)` reports progress; `on_epoch(metrics)` reports an epoch
    once its checkpoint is on disk (the checkpoint, history included, is the run's one record:
    a run killed at any moment resumes with every epoch exactly once); `on_checkpoint(state)`
    receives each epoch's checkpoint (as `checkpoint` would hold it), before `on_epoch`.
    Distributed (the Ray engine): `model` is wrapped in DistributedDataParallel, `shard` is
    (rank, world size); each process trains on its share, metrics are summed over all of them,
    and each evaluates the whole validation set with the same (synchronised) weights.
    """
    import torch

    from .feed import Amp, make_batches, wants_channels_last

    core = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    device = config.resolved_device()
    amp = Amp(device, config.resolved_precision())
    channels_last = wants_channels_last(core, device)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True      # fixed image sizes: let cuDNN pick its fastest kernels once
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    optimizer = make_optimizer(model, config)
    loss_fn = make_loss(config, multi_label)
    history: list[dict] = []
    start = 0
    if resume and resume_state is None and checkpoint is not None and checkpoint.is_file():
        resume_state = load_checkpoint(checkpoint)
    if resume and resume_state is not None:
        core.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        amp.load_state_dict(resume_state.get("scaler"))
        start, history = int(resume_state["epoch"]), list(resume_state["history"])
    best = _resumed_best(resume_state) if resume and resume_state is not None else None
    train_batches, feed = make_batches(train_set, config, device=device, shuffle=True, shard=shard,
                                       channels_last=channels_last)
    val_loader = None
    if len(val_set):
        val_loader, _ = make_batches(val_set, config, device=device, shuffle=False, channels_last=channels_last)
    result = {"confusion": None, "per_class": [None] * num_classes}
    trained_samples, train_seconds = 0, 0.0
    writer = CheckpointWriter(checkpoint, on_saved=on_epoch)
    try:
        for epoch in range(start + 1, config.epochs + 1):
            torch.manual_seed(config.seed * 1000 + epoch)       # augmentations: the same on a resumed run
            t0 = time.perf_counter()
            seen, hits, loss_sum = train_one_epoch(model, train_batches.set_epoch(epoch), optimizer, loss_fn,
                                                   epoch=epoch, multi_label=multi_label, device=device,
                                                   on_batch=on_batch, amp=amp)
            if shard is not None:
                seen, hits, loss_sum = _sum_over_processes(seen, hits, loss_sum)
                _average_batchnorm_statistics(core)
            seconds = time.perf_counter() - t0
            trained_samples += seen
            train_seconds += seconds
            if val_loader is not None:
                result = evaluate(core, val_loader, loss_fn, num_classes=num_classes, multi_label=multi_label,
                                  device=device, amp=amp)
            metrics = EpochMetrics(epoch=epoch, epochs=config.epochs, train_loss=loss_sum / max(seen, 1),
                                   train_accuracy=hits / max(seen, 1), val_loss=result.get("loss"),
                                   val_accuracy=result.get("accuracy"), samples_per_s=seen / max(seconds, 1e-9),
                                   seconds=seconds, lr=optimizer.param_groups[0]["lr"])
            history.append(metrics.to_dict())
            if best_epoch(history) == epoch:
                best = {"epoch": epoch, "model": {k: v.detach().to("cpu", copy=True)
                                                  for k, v in core.state_dict().items()}}
            if on_checkpoint:
                on_checkpoint(_checkpoint_state(core, optimizer, epoch, history, best, amp.state_dict()))
            writer.save(metrics, model=core, optimizer=optimizer, history=history, best=best,
                        scaler=amp.state_dict())
    finally:
        writer.finish()        # the last checkpoint is complete (and reported) before anyone reads it
    last = history[-1]["epoch"] if history else None
    if best is not None and best["epoch"] != last and "model" in best:   # keep the best epoch's weights
        core.load_state_dict(best["model"])
    if (start >= config.epochs or (best and best["epoch"] != last)) and val_loader is not None:
        result = evaluate(core, val_loader, loss_fn, num_classes=num_classes, multi_label=multi_label, device=device,
                          amp=amp)
    core.to("cpu", memory_format=torch.contiguous_format).eval()    # safetensors saves contiguous tensors
    return FitResult(history=history, confusion_matrix=result["confusion"], per_class_accuracy=result["per_class"],
                     resumed_from_epoch=start, samples_per_s=trained_samples / max(train_seconds, 1e-9),
                     precision=amp.precision, feed=feed, best_epoch=best["epoch"] if best else last)


def _resumed_best(state: dict) -> dict | None:
    """The best epoch so far of a resumed run: its weights from the checkpoint, or the checkpoint's
    own weights when the best epoch was its last one."""
    best = state.get("best")
    if best is None:
        return None
    if "model" not in best:
        return {"epoch": best["epoch"], "model": state["model"]}
    return best
