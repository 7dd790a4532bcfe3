"""Schedulers for imgai's batch functions. One implementation, two schedulers:

- `local`: this process — a thread pool decodes while one onnxruntime session infers
  (`imgai.classify.tag.Tagger.run`);
- `ray`: a Ray cluster (or a private local Ray) — Ray Data tasks decode, an actor pool of
  onnxruntime sessions infers (`imgai.engines.ray_tag`), calling the very same
  `Tagger.decode` / `Tagger.infer` / `Tagger.top_k`, so both give the same answers.

Ray is optional (`pip install -r requirements-ray.txt`) and imported only inside the Ray engine.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Iterator

from ..classify.tag import TagOptions, TagResult, Tagger, collect_images
from ..errors import ConfigError

ENGINES = ("local", "ray")


@dataclass
class EngineOptions:
    engine: str = "local"
    address: str | None = None   # ray: a cluster to join (else RAY_ADDRESS, else a private local Ray)
    actors: int | None = None    # ray: inference actors (default: one per node)

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.engine != "ray" and (self.address or self.actors):
            raise ConfigError("--address and --actors only apply to --engine ray")
        if self.actors is not None and self.actors < 1:
            raise ConfigError(f"actors must be ≥ 1, got {self.actors!r}")


class TagStream:
    """Results of one tagging run, yielded as they finish: `len(stream)` images in all."""

    def __init__(self, files: list[str], results: Iterator[TagResult]):
        self.files = files
        self._results = results

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[TagResult]:
        return self._results

    def close(self) -> None:
        """Stop early (the Ray engine shuts its Ray down)."""
        close = getattr(self._results, "close", None)
        if close:
            close()


def tag_stream(paths, *, model_id: str | None = None, options: TagOptions = TagOptions(),
               engine: EngineOptions = EngineOptions()) -> TagStream:
    """Tag files and folders with a registered model on the chosen engine, streaming results.

    The local engine yields in input order; the Ray engine yields as batches finish."""
    if engine.engine == "ray":
        ray_tag = importlib.import_module("imgai.engines.ray_tag")
        ray_tag.require_ray()
        files = ray_tag.list_images(paths)
        return TagStream(files, ray_tag.tag_on_ray(files, model_id=model_id, options=options,
                                                   address=engine.address, actors=engine.actors))
    files = [str(p) for p in collect_images(paths)]
    return TagStream(files, Tagger.for_model(model_id).run(files, options))
