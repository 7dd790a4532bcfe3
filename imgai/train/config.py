"""`TrainConfig`: every training setting, checked when it is made, each message naming the value
and the fix (so a bad setting fails before a job is queued, never halfway through one)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..engines import EngineOptions
from ..errors import ConfigError

LOSSES = ("cross_entropy", "bce")     # bce: multi-label (an image filed under several classes)
OPTIMIZERS = ("adam", "adamw")
DEVICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """The devices this machine can train on ("auto" picks the first accelerator, else cpu)."""
    import torch

    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


@dataclass
class TrainConfig:
    # loss
    loss: str = "cross_entropy"       # cross_entropy | bce (multi-label)
    label_smoothing: float = 0.0      # 0 ≤ x < 1; cross-entropy only
    # optimizer
    optimizer: str = "adamw"          # adam | adamw
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01
    # schedule
    batch_size: int = 32
    epochs: int = 10
    # machine
    device: str = "auto"              # auto | cpu | cuda | mps (only those present)
    precision: str = "auto"           # auto | fp32 | bf16 | fp16: auto is bf16 autocast on GPUs with bfloat16,
                                      # fp16 autocast + gradient scaler on older GPUs, fp32 on a CPU
    num_workers: int = 0              # DataLoader worker processes; 0 loads in the training process
    prefetch_factor: int | None = None  # batches each worker loads ahead; needs num_workers > 0
    seed: int = 0
    # data overrides (None: the data pipeline's own value)
    image_size: int | None = None
    val_split: float | None = None
    flip: bool | None = None          # horizontal flip (None: the data pipeline's setting)
    crop: bool | None = None          # random resized crop, scale 0.6–1 (None: the data pipeline's setting)
    pretrained: bool = True           # start from local ImageNet weights when there are some
    # where it runs: local (this worker process) or ray (Ray Train, DDP over engine.workers processes:
    # gloo on CPU, nccl on CUDA); an engine name is taken too
    engine: EngineOptions = field(default_factory=EngineOptions)

    def __post_init__(self):
        _choice("loss", self.loss, LOSSES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _number("label_smoothing", self.label_smoothing, 0.0, 1.0, "a value in [0, 1), e.g. 0.1")
        if self.label_smoothing and self.loss == "bce":
            raise ConfigError(f"label_smoothing={self.label_smoothing} applies to cross_entropy only; "
                              "set it to 0 with loss 'bce'")
        if not _finite(self.lr) or self.lr <= 0:
            raise ConfigError(f"learning rate lr={self.lr!r} must be a positive number; try 1e-3 (Adam) "
                              "or 1e-4 when fine-tuning pretrained weights")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            _number(name, value, 0.0, 1.0, f"a value in [0, 1), e.g. {0.9 if name == 'beta1' else 0.999}")
        if not _finite(self.eps) or self.eps <= 0:
            raise ConfigError(f"eps={self.eps!r} must be a small positive number, e.g. 1e-8")
        if not _finite(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay!r} must be ≥ 0, e.g. 0.01 (or 0 for none)")
        _integer("batch_size", self.batch_size, 1, 65536, "e.g. 32")
        _integer("epochs", self.epochs, 1, 100000, "e.g. 10")
        _integer("num_workers", self.num_workers, 0, 256, "0 to load in the training process, or 2–8")
        if self.prefetch_factor is not None:
            _integer("prefetch_factor", self.prefetch_factor, 1, 1024, "e.g. 2")
            if self.num_workers == 0:
                raise ConfigError(f"prefetch_factor={self.prefetch_factor} needs num_workers > 0: only DataLoader "
                                  "worker processes prefetch; set num_workers to 2 or more, or leave "
                                  "prefetch_factor empty")
        _integer("seed", self.seed, 0, 2**32 - 1, "a non-negative integer")
        if self.image_size is not None:
            _integer("image_size", self.image_size, 16, 2048, "e.g. 224 (or leave empty for the data pipeline's)")
        if self.val_split is not None:
            _number("val_split", self.val_split, 0.0, 0.9, "a fraction in [0, 0.9), e.g. 0.2")
        for name in ("flip", "crop"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true, false or empty (the data pipeline's)")
        if not isinstance(self.pretrained, bool):
            raise ConfigError(f"pretrained={self.pretrained!r} must be true or false")
        self.engine = EngineOptions.from_value(self.engine)
        if self.engine.name == "ray" and self.device == "mps":
            raise ConfigError("device 'mps' cannot train on Ray (DDP needs gloo on CPU or nccl on CUDA); "
                              "use cpu, cuda or auto")
        _choice("device", self.device, DEVICES)
        present = available_devices()
        if self.device not in present:
            from ..devices import what_was_found

            found = f": {what_was_found()}" if self.device == "cuda" else ""
            raise ConfigError(f"device {self.device!r} is not available on this machine (present: "
                              f"{', '.join(present)}){found}; use 'auto' or one of those")
        self.resolved_precision()     # bf16 on a GPU without it, fp16 on a CPU: refused here, before a job

    def resolved_precision(self) -> str:
        """fp32 | bf16 | fp16 for this config's device (see imgai.devices.resolve_precision)."""
        from ..devices import resolve_precision

        return resolve_precision(self.precision, self.resolved_device())

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        present = available_devices()
        return next((d for d in ("cuda", "mps") if d in present), "cpu")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        if isinstance(data.get("engine"), str) or "workers" in data or "address" in data:
            data = _fold_engine(data)      # a record written before EngineOptions: flat engine/workers/address
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {unknown}; known settings: {', '.join(sorted(known))}")
        return cls(**data)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed (None values are ignored), validated again. `engine` may
        be a partial dict ({"workers": 4} keeps the engine and its address)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if isinstance(changes.get("engine"), dict):
            given = changes["engine"]
            base = {} if given.get("name") not in (None, self.engine.name) else self.engine.to_dict()
            changes["engine"] = {**base, **given}
        return TrainConfig.from_dict({**self.to_dict(), **changes})


def _fold_engine(data: dict) -> dict:
    data = dict(data)
    name = data.pop("engine", None) or "local"
    workers, address = data.pop("workers", None), data.pop("address", None)
    if isinstance(name, str):
        name = {"name": name, **({"workers": workers, "address": address} if name == "ray" else {})}
    return {**data, "engine": name}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name} {value!r} is not one of {', '.join(choices)}")


def _number(name: str, value, low: float, high: float, hint: str) -> None:
    if not _finite(value) or not (low <= value < high):
        raise ConfigError(f"{name}={value!r} is out of range: use {hint}")


def _integer(name: str, value, low: int, high: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise ConfigError(f"{name}={value!r} must be a whole number from {low} to {high}: {hint}")
