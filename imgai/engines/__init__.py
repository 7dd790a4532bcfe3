"""Where work runs. One implementation, two schedulers, one table:

- `local`: this process — tagging decodes on a thread pool while one onnxruntime session infers,
  the conversion matrix converts one target after another, training runs the loop here;
- `ray`: a Ray cluster (or a private local Ray) — the Ray modules call the very same batch
  functions, conversion targets and training loop, so both engines give the same answers.

`ENGINES` names them; `EngineOptions` is the one options type every kind of work takes (tag,
quantize and train carry it as their `engine`); `WORK` is the table from (kind of work, engine)
to the function that does it, written as "module:function" and imported only when it is looked
up, so Ray is imported only when it is used. This module imports nothing of imgai's but errors:
the conversion matrix and the training job look their engine up here without importing upward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import import_module
from typing import Callable

from ..errors import ConfigError

ENGINES = ("local", "ray")
RAY_TRAIN_WORKERS = 2          # training processes on Ray when --workers is not given

# (kind of work, engine) → "module:function". The signatures each kind shares:
#   tag:      (paths, *, model_id, options: TagOptions, engine: EngineOptions) -> TagStream
#   quantize: (request: QuantizeRequest, *, on_progress, on_result, on_warning, run_id) -> list[TargetResult]
#   train:    (model, train_set, val_set, config: TrainConfig, *, num_classes, multi_label, checkpoint,
#              resume, resume_state, on_epoch, on_batch) -> FitResult
WORK: dict[tuple[str, str], str] = {
    ("tag", "local"): "imgai.classify.tag:stream_here",
    ("tag", "ray"): "imgai.engines.ray_tag:stream_on_ray",
    ("quantize", "local"): "imgai.diffusion.matrix:run_here",
    ("quantize", "ray"): "imgai.engines.ray_quantize:run_on_ray",
    ("train", "local"): "imgai.train.loop:fit",
    ("train", "ray"): "imgai.engines.ray_train:fit_on_ray",
}
KINDS_OF_WORK = tuple(dict.fromkeys(kind for kind, _ in WORK))


@dataclass(frozen=True)
class EngineOptions:
    """Where one piece of work runs (the same type for tag, quantize and train)."""
    name: str = "local"              # local | ray
    address: str | None = None       # ray: a cluster to join (else RAY_ADDRESS, else a private local Ray)
    workers: int | None = None       # ray: processes doing the work — tag: inference actors (default one
                                     # per node); train: DDP processes (default RAY_TRAIN_WORKERS)

    def __post_init__(self):
        if self.name not in ENGINES:
            raise ConfigError(f"engine {self.name!r} is not one of {', '.join(ENGINES)}")
        if self.name != "ray" and (self.address or self.workers is not None):
            given = (f"address {self.address!r}" if self.address
                     else f"workers={self.workers} (--workers; --actors for tag)")
            raise ConfigError(f"{given} only applies to engine 'ray' (pass --engine ray), not {self.name!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or not 1 <= self.workers <= 1024):
            raise ConfigError(f"workers={self.workers!r} must be a whole number from 1 to 1024, e.g. 2")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_value(cls, value: "EngineOptions | dict | str | None") -> "EngineOptions":
        """An EngineOptions from what a record or a caller holds: itself, its dict, or an engine name."""
        if value is None or isinstance(value, EngineOptions):
            return value or cls()
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"name", "address", "workers"})
            if unknown:
                raise ConfigError(f"unknown engine setting(s) {unknown}; known: name, address, workers")
            return cls(**value)
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)} or its settings, got {value!r}")

    def require(self) -> None:
        """Fail now, with the install hint, when this engine's packages are missing (not inside a job)."""
        if self.name == "ray":
            from .ray_session import require_ray

            require_ray()


def work_function(kind: str, engine: EngineOptions | str) -> Callable:
    """The function that does `kind` of work on `engine` (imported now, not before)."""
    name = engine.name if isinstance(engine, EngineOptions) else engine
    if kind not in KINDS_OF_WORK:
        raise ConfigError(f"no kind of work {kind!r}; known: {', '.join(KINDS_OF_WORK)}")
    if name not in ENGINES:
        raise ConfigError(f"engine {name!r} is not one of {', '.join(ENGINES)}")
    module, _, function = WORK[(kind, name)].partition(":")
    if name == "ray":
        EngineOptions(name).require()
    return getattr(import_module(module), function)


def tag_stream(paths, *, model_id: str | None = None, options=None, engine: EngineOptions = EngineOptions()):
    """Tag files and folders with a registered model on the chosen engine, streaming results
    (a `TagStream`). The local engine yields in input order; the Ray engine as batches finish."""
    if options is None:
        from ..classify.tag import TagOptions

        options = TagOptions()
    return work_function("tag", engine)(paths, model_id=model_id, options=options, engine=engine)
