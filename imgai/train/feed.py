"""How batches reach the model, and in which precision it computes.

Two feeds with one contract (`set_epoch(epoch)`, `len`, iteration of (images, targets)):
  * the decoded-image cache (train.cache) when the images fit its budget: decoded once, augmented
    with tensor ops where training runs;
  * otherwise one DataLoader for the whole run: workers that persist across epochs, pinned memory
    and non-blocking copies on CUDA, and a sampler reseeded per epoch (the same order on a resume).
`Amp` is the precision: bf16 autocast, or fp16 autocast with a gradient scaler, or plain fp32.
"""

from __future__ import annotations

import contextlib

from .config import TrainConfig


class Amp:
    """Mixed precision for one run: `with amp.autocast(): …` around the forward pass and the loss,
    `amp.backward_step(loss, optimizer)` for the update (scaled for fp16)."""

    def __init__(self, device: str, precision: str):
        import torch

        self.device, self.precision = device, precision
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" and device == "cuda" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device, dtype=self.dtype)

    def state_dict(self) -> dict | None:
        """The fp16 loss scaler's state (scale, growth tracker), for the checkpoint; None without one."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        """A resumed fp16 run goes on with the scale it had reached, not the initial 65536."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

    def backward_step(self, loss, optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def wants_channels_last(model, device: str) -> bool:
    """Convolutional networks run faster in channels_last on a GPU (tensor cores); on a CPU the
    layout stays as it is (nothing may get slower there)."""
    import torch

    return device == "cuda" and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


class EpochShuffle:
    """A random order of `n` indices drawn from seed*1000 + epoch: a fresh order every epoch from one
    DataLoader (whose workers persist), and the same order for an epoch on a resumed run."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        import torch

        yield from torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch)).tolist()

    def __len__(self) -> int:
        return self.n


def make_loader(dataset, config: TrainConfig, *, shuffle: bool, device: str = "cpu",
                shard: tuple[int, int] | None = None):
    """One DataLoader for the whole run. `shard=(rank, world_size)`: this process's share of the data,
    as in distributed training."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    if shard is not None:
        rank, world = shard
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=config.seed * 1000)
    else:
        sampler = EpochShuffle(len(dataset), config.seed) if shuffle else None
    size = len(sampler) if sampler is not None else len(dataset)
    # a last batch of one sample breaks BatchNorm in train mode: drop it in that case only
    drop_last = shuffle and size > config.batch_size and size % config.batch_size == 1
    extra = {"prefetch_factor": config.prefetch_factor} if config.num_workers and config.prefetch_factor else {}
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
                      drop_last=drop_last, pin_memory=device == "cuda", persistent_workers=config.num_workers > 0,
                      generator=torch.Generator().manual_seed(config.seed), **extra)


class LoaderBatches:
    """The DataLoader feed: batches copied to the device (non-blocking from pinned memory)."""

    def __init__(self, dataset, config: TrainConfig, *, device: str, shuffle: bool,
                 shard: tuple[int, int] | None = None, channels_last: bool = False):
        self.loader = make_loader(dataset, config, shuffle=shuffle, device=device, shard=shard)
        self.device, self.channels_last = device, channels_last

    def set_epoch(self, epoch: int) -> "LoaderBatches":
        sampler = self.loader.sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        import torch

        layout = torch.channels_last if self.channels_last else torch.preserve_format
        for images, targets in self.loader:
            yield (images.to(self.device, non_blocking=True, memory_format=layout),
                   targets.to(self.device, non_blocking=True))


def make_batches(dataset, config: TrainConfig, *, device: str, shuffle: bool, shard: tuple[int, int] | None = None,
                 channels_last: bool = False):
    """(feed, how): the decoded-image cache when the images fit its budget, else the DataLoader feed."""
    from . import cache

    spec = getattr(dataset, "spec", None)
    if spec is None:
        return (LoaderBatches(dataset, config, device=device, shuffle=shuffle, shard=shard,
                              channels_last=channels_last), "streaming from the files")
    plan = cache.plan_cache(len(dataset), spec["image_size"])
    if not plan.use:
        return (LoaderBatches(dataset, config, device=device, shuffle=shuffle, shard=shard,
                              channels_last=channels_last), plan.reason)
    store, where = "cpu", "in RAM"
    if device == "cuda":
        from ..devices import cuda_memory

        if plan.bytes <= cuda_memory()[0] * cache.CACHE_VRAM_FRACTION:
            store, where = "cuda", "on the GPU"
    decoded = cache.DecodedImages(dataset, image_size=spec["image_size"], store=store, device=device,
                                  workers=max(1, config.num_workers))
    feed = cache.CachedBatches(decoded, batch_size=config.batch_size, mean=spec["mean"], std=spec["std"],
                               augment=spec["augment"] if shuffle else None, shuffle=shuffle, seed=config.seed,
                               channels_last=channels_last, shard=shard)
    return feed, f"{plan.reason}, {where}"
