"""Tagging on Ray: Ray Data drives the same batch functions as the local engine.

    paths ──from_items──> tag (map_batches over TagActor, an actor pool: Tagger.decode in the
          actor's thread pool — with the content hash of the bytes read when the options ask —
          then Tagger.infer + Tagger.top_k)
          ──> the driver, which writes results as they come

Only paths and result rows travel between processes: each actor decodes its own batches (a thread
per CPU it owns, as the local engine's decode pool does), so decoded arrays never go through the
object store, and no decode task or worker process runs beside the actors.

The model's files travel through Ray's object store (one `ray.put` of their bytes); each actor
writes them to its own temporary folder, checks and loads them exactly as the local engine does
(one onnxruntime session per actor, with as many threads as its node's CPUs allow), and removes
them. Nothing assumes a disk shared between nodes, except for the images themselves: local
paths must exist on every node (a shared folder), or be URIs Ray reads (`s3://`, `gs://`, …).

Scheduling (see `plan_for`): by default one actor per node, claiming that node's CPUs and running
that many onnxruntime threads and decode threads, so no two actors ever share a node and decoding
uses at most one thread per CPU of the cluster.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..classify.onnx_file import external_data_files
from ..classify.preprocess import PreprocessSpec
from ..classify.labels import TAGS_FILE
from ..classify.tag import (IMAGE_SUFFIXES, TagOptions, TagResult, Tagger, TagStream, collect_images,
                           tagging_folder)
from ..errors import ConfigError, JobError
from .ray_session import ray_session, require_ray

def is_uri(path) -> bool:
    return "://" in str(path)


# -- listing ------------------------------------------------------------------------------

def list_images(paths: Iterable) -> list[str]:
    """Local files and folders as `collect_images` finds them; URIs (s3://, gs://, file://…)
    listed through pyarrow's filesystems, folders recursively."""
    files: list[str] = []
    for item in paths:
        if is_uri(item):
            files.extend(_list_uri(str(item)))
        else:
            files.extend(str(p) for p in collect_images([item]))
    return files


def _list_uri(uri: str) -> list[str]:
    from pyarrow import fs as pafs

    scheme = uri.split("://", 1)[0]
    try:
        filesystem, root = pafs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise ConfigError(f"{uri} does not exist; give image files or folders")
        if info.type == pafs.FileType.File:
            return [uri]
        found = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as exc:   # pyarrow: unknown scheme, no credentials, unreachable
        raise ConfigError(f"cannot list {uri}: {exc}") from exc
    return sorted(f"{scheme}://{f.path}" for f in found
                  if f.type == pafs.FileType.File and Path(f.path).suffix.lower() in IMAGE_SUFFIXES)


def _readable(path: str):
    """What `decode_image` opens: the path itself, or a URI's bytes."""
    if not is_uri(path):
        return path
    from pyarrow import fs as pafs

    filesystem, inner = pafs.FileSystem.from_uri(path)
    with filesystem.open_input_file(inner) as f:
        return io.BytesIO(f.read())


# -- the model, through the object store ---------------------------------------------------

def model_files(folder: Path) -> dict[str, bytes]:
    """The files a Tagger loads (model.onnx and its external data, labels.json, preprocess.json)."""
    folder = Path(folder)
    needed = [folder / "model.onnx", folder / "labels.json", folder / "preprocess.json"]
    needed += [p for p in (folder / TAGS_FILE,) if p.is_file()]
    needed += external_data_files(folder / "model.onnx")
    return {str(p.resolve().relative_to(folder.resolve())): p.read_bytes() for p in needed}


# -- the batch stage -------------------------------------------------------------------------

def _decode_one(tagger: Tagger, path: str, hashed: bool = False):
    """(array, error, content hash) for one path or URI, as Tagger.decode_safe / decode_hashed give
    them (the hash only when asked, and for local paths)."""
    try:
        if hashed and not is_uri(path):
            return tagger.decode_hashed(path)
        return (*tagger.decode_safe(_readable(path)), None)
    except OSError as exc:          # a URI that cannot be read
        return None, f"cannot read: {exc}", None


CALLS_PER_ACTOR = 2    # batches an actor works on at once: one decodes while the other runs the session


class TagActor:
    """One onnxruntime session per actor: paths → arrays (decoded here, by a thread pool) → top-k
    rows (as JSON text). Two calls run at once, as in the local engine: the next batch decodes while
    the session runs this one (one batch in the session at a time)."""

    def __init__(self, model: list, *, options: dict, threads: dict):
        import ray

        context = ray.get_runtime_context()
        node = context.get_node_id()
        files = ray.get(model[0])
        count = threads.get(node) or threads.get("default") or 1
        with tempfile.TemporaryDirectory(prefix="imgai-model-") as tmp:
            for name, data in files.items():
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.tagger = Tagger(Path(tmp), threads=count)
        self.decoders = ThreadPoolExecutor(max_workers=count, thread_name_prefix="imgai-decode")
        self.session_lock = threading.Lock()
        self.options = TagOptions(**options)
        self.worker = f"{node[:12]}:{os.getpid()}"

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        hashed = self.options.content_hash
        decoded = list(self.decoders.map(lambda p: _decode_one(self.tagger, p, hashed), paths))
        errors = np.array([error or "" for _, error, _ in decoded], dtype=object)
        tags = ['{"tags": []}'] * len(paths)
        ok = [i for i, (array, _, _) in enumerate(decoded) if array is not None]
        if ok:
            arrays = np.stack([decoded[i][0] for i in ok])
            with self.session_lock:
                probs = self.tagger.infer(arrays)
            for i, (row, rating) in zip(ok, self.tagger.select(probs, self.options)):
                tags[i] = json.dumps({"tags": [asdict(t) for t in row], "rating": rating and asdict(rating)},
                                     ensure_ascii=False)
        return {"path": batch["path"], "tags": np.array(tags, dtype=object), "error": errors,
                "hash": np.array([digest or "" for _, _, digest in decoded], dtype=object),
                "worker": np.array([self.worker] * len(paths), dtype=object)}


@dataclass
class Plan:
    actors: int           # inference actors in the pool
    actor_cpus: int       # CPUs each actor claims
    threads: dict         # node id → onnxruntime threads of an actor there ("default" for others)
    decoders: int         # decode threads in the whole cluster (each actor: its threads)


def plan_for(nodes: list[dict], actors: int | None = None) -> Plan:
    """Actors, their CPU claims and threads, and the decode cap, for these (alive, CPU) nodes."""
    cpus = [int(n["Resources"]["CPU"]) for n in nodes] or [1]
    actors = actors or len(nodes) or 1
    if actors > sum(cpus):
        raise ConfigError(f"--actors {actors} is more than the {sum(cpus)} CPUs of this Ray cluster; "
                          "each actor needs one")
    per_node = max(1, math.ceil(actors / max(1, len(nodes))))
    threads = {n["NodeID"]: max(1, c // per_node) for n, c in zip(nodes, cpus)}
    threads["default"] = max(1, min(cpus) // per_node)
    return Plan(actors=actors, actor_cpus=threads["default"], threads=threads, decoders=max(1, sum(cpus)))


def build_dataset(files: list[str], *, model_ref, options: TagOptions, plan: Plan, actor_cls=TagActor):
    """The Ray Data pipeline (lazy): rows {path, tags (JSON), error, worker}."""
    import ray
    from ray.data import ActorPoolStrategy

    blocks = max(1, math.ceil(len(files) / options.batch_size))
    ds = ray.data.from_items([{"path": f} for f in files], override_num_blocks=blocks)
    return ds.map_batches(actor_cls, batch_size=options.batch_size, batch_format="numpy",
                          fn_constructor_kwargs={"model": [model_ref], "options": options.to_dict(),
                                                 "threads": plan.threads},
                          compute=ActorPoolStrategy(size=plan.actors, max_concurrent_calls_per_actor=CALLS_PER_ACTOR,
                                                    enable_true_multi_threading=True),
                          num_cpus=plan.actor_cpus)


# -- the driver ------------------------------------------------------------------------------

def tag_rows(files: list[str], *, folder: Path, options: TagOptions, address: str | None = None,
             actors: int | None = None, num_cpus: int | None = None,
             actor_cls=TagActor) -> Iterator[tuple[TagResult, str]]:
    """(result, worker) pairs as batches finish; Ray is up for as long as this generator runs."""
    PreprocessSpec.load(folder / "preprocess.json")      # a bad spec fails here, before Ray starts
    files_bytes = model_files(folder)
    if not files:
        return
    with ray_session(address, num_cpus=num_cpus) as session:
        import ray

        model_ref = ray.put(files_bytes)
        del files_bytes
        ds = build_dataset(files, model_ref=model_ref, options=options, plan=plan_for(session["nodes"], actors),
                           actor_cls=actor_cls)
        batches = iter(ds.iter_batches(batch_size=None, batch_format="numpy"))
        while True:
            try:
                batch = next(batches, None)
            except ray.exceptions.RayError as exc:
                raise JobError(f"tagging on Ray failed: {str(exc).strip().splitlines()[0][:300]}") from exc
            if batch is None:
                return
            hashes = batch["hash"] if "hash" in batch else [""] * len(batch["path"])
            for path, tags, error, digest, worker in zip(batch["path"], batch["tags"], batch["error"], hashes,
                                                         batch["worker"]):
                result = TagResult.from_dict({"path": str(path), "error": str(error) or None,
                                              "content_hash": str(digest) or None, **json.loads(tags)})
                yield result, str(worker)


def tag_on_ray(files: list[str], *, model_id: str | None = None, options: TagOptions = TagOptions(),
               address: str | None = None, actors: int | None = None,
               num_cpus: int | None = None) -> Iterator[TagResult]:
    """Tag `files` on Ray with a registered model; results in the order batches finish.

    Checks the model and Ray before anything starts; Ray starts on the first `next()`."""
    require_ray()
    folder, _ = tagging_folder(model_id)
    rows = tag_rows(files, folder=folder, options=options, address=address, actors=actors, num_cpus=num_cpus)

    def results():
        with closing(rows):
            for result, _worker in rows:
                yield result

    return results()


def stream_on_ray(paths: Iterable, *, model_id: str | None = None, options: TagOptions = TagOptions(),
                  engine=None) -> TagStream:
    """The Ray engine's tagging (`imgai.engines.WORK`): results in the order batches finish."""
    files = list_images(paths)
    return TagStream(files, tag_on_ray(files, model_id=model_id, options=options,
                                       address=engine.address if engine else None,
                                       actors=engine.workers if engine else None))
