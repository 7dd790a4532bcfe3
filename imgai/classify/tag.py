"""Tagging images with an enabled ONNX model through onnxruntime.

Written as plain batch functions — decode a batch of files into arrays, run a batch through a
session, turn scores into top-k rows — that the local engine drives with a thread pool (decoding
the next images while the session runs the current batch). Any other scheduler can drive the
same functions and get the same answers.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .. import registry
from ..errors import ConfigError, StateError, UnreadableImageError
from ..words import term
from .labels import TAGS_FILE, display_name, read_labels, read_tag_categories
from .preprocess import PreprocessSpec, content_hasher, decode_image, read_image_file

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
SHARED_TAGGERS = 4   # loaded models kept between calls (an app serves a few models to many visitors)


GENERAL_THRESHOLD = 0.35       # WD taggers' defaults for general and character tags
CHARACTER_THRESHOLD = 0.85
CLASSIFIER_TOP_K = 5


@dataclass
class TagOptions:
    top_k: int | None = None               # None: 5 for classifiers, every tag above threshold for taggers
    threshold: float | None = None         # classifiers: minimum score (0); taggers: sets both below
    general_threshold: float | None = None     # taggers with categories: general tags (0.35)
    character_threshold: float | None = None   # … and character tags (0.85)
    underscores_to_spaces: bool = False    # long_hair → long hair (kaomoji such as ^_^ kept)
    exclude_tags: tuple[str, ...] = ()     # never reported (either spelling)
    batch_size: int = 16
    workers: int | None = None   # decoding threads; default: the machine's cores
    content_hash: bool = False   # also hash each file's bytes as read for decoding (TagResult.content_hash)

    def __post_init__(self):
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ConfigError(f"top_k must be a whole number ≥ 1, got {self.top_k!r}")
        for name in ("threshold", "general_threshold", "character_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"{name} is a probability between 0 and 1, got {value!r}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 1024:
            raise ConfigError(f"batch_size must be between 1 and 1024, got {self.batch_size!r}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be ≥ 1, got {self.workers!r}")
        if isinstance(self.exclude_tags, str):
            self.exclude_tags = tuple(t.strip() for t in self.exclude_tags.split(",") if t.strip())
        self.exclude_tags = tuple(self.exclude_tags)

    def threshold_for(self, category: str | None) -> float:
        """The minimum score of a tag of `category` (None: a plain classifier's class)."""
        if category is None:
            return self.threshold or 0.0
        if category == "character":
            return next(v for v in (self.character_threshold, self.threshold, CHARACTER_THRESHOLD) if v is not None)
        return next(v for v in (self.general_threshold, self.threshold, GENERAL_THRESHOLD) if v is not None)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Tag:
    label: str
    score: float
    category: str | None = None      # taggers with categories: general, character, … (rating goes apart)


@dataclass
class TagResult:
    path: str
    tags: list[Tag] = field(default_factory=list)
    error: str | None = None
    rating: Tag | None = None        # taggers with a rating category: the top rating and its score
    # TagOptions(content_hash=True): the file's content hash (`content_hasher`) from the bytes read
    # for decoding; None when not asked or the file could not be read
    content_hash: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        if data["content_hash"] is None:
            del data["content_hash"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TagResult":
        rating = data.get("rating")
        return cls(data["path"], [Tag(**t) for t in data.get("tags") or []], data.get("error"),
                   Tag(**rating) if rating else None, data.get("content_hash"))


class Tagger:
    """An ONNX model ready to tag: session, labels and preprocessing."""

    def __init__(self, onnx_dir: Path, *, model_id: str | None = None, threads: int | None = None):
        from .onnx_file import ensure_checked
        from .session import create_session

        from .onnx_graph import read_graph

        onnx_dir = Path(onnx_dir)
        ensure_checked(onnx_dir / "model.onnx")     # checked when added/converted; again only if changed
        self.model_id = model_id
        self.labels = read_labels(onnx_dir / "labels.json")
        self.categories = read_tag_categories(onnx_dir / TAGS_FILE) if (onnx_dir / TAGS_FILE).is_file() else None
        self.spec = PreprocessSpec.load(onnx_dir / "preprocess.json")
        self.graph = read_graph(onnx_dir / "model.onnx")
        self.session = create_session(onnx_dir / "model.onnx", threads=threads)
        self.input_name = self.graph.input_name

    @classmethod
    def for_model(cls, model_id: str | None = None, *, threads: int | None = None) -> "Tagger":
        """The tagger of a registered model (the default one when `model_id` is None), loaded once
        and shared by every call until the model's files change: creating a session costs more than
        tagging a photo, and onnxruntime runs one session from many threads. The registry decides
        on every call whether the model may tag (enabled, converted, valid)."""
        folder, model_id = tagging_folder(model_id)
        key = (str(folder), model_id, threads, _fingerprint(folder))
        with _SHARED_LOCK:
            if key not in _SHARED:
                _SHARED[key] = cls(folder, model_id=model_id, threads=threads)
                for old in [k for k in _SHARED if k[0] == key[0] and k != key]:
                    del _SHARED[old]                  # reconverted: the old files' session goes
                while len(_SHARED) > SHARED_TAGGERS:
                    _SHARED.popitem(last=False)       # least recently used
            _SHARED.move_to_end(key)
            return _SHARED[key]

    @classmethod
    def decoder(cls, spec: PreprocessSpec) -> "Tagger":
        """A tagger that only decodes (no session), for workers that feed another one's `infer`."""
        self = cls.__new__(cls)
        self.model_id, self.labels, self.spec, self.session, self.input_name = None, [], spec, None, None
        self.categories, self.graph = None, None
        return self

    # -- the batch functions --------------------------------------------------------------

    def decode(self, path: str | Path) -> np.ndarray:
        """One file → preprocessed array; an unreadable file raises UnreadableImageError."""
        return self.spec(decode_image(path))

    def decode_safe(self, path) -> tuple[np.ndarray | None, str | None]:
        """Like `decode`, but an unreadable file gives (None, reason) instead of raising. Anything
        else (a bug in preprocessing) is raised: it is not the file's fault."""
        try:
            return self.decode(path), None
        except UnreadableImageError as exc:
            return None, str(exc)

    def decode_hashed(self, path) -> tuple[np.ndarray | None, str | None, str | None]:
        """Like `decode_safe`, plus the file's content hash from the very bytes read for decoding
        (one read of the file): (array, error, hash); the hash is None only when the file cannot
        be read at all."""
        try:
            data = read_image_file(path)
        except UnreadableImageError as exc:
            return None, str(exc), None
        hasher = content_hasher()
        hasher.update(data)
        try:
            return self.spec(decode_image(io.BytesIO(data))), None, hasher.hexdigest()
        except UnreadableImageError as exc:
            return None, str(exc), hasher.hexdigest()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """A batch of arrays → probabilities: the graph's own when it ends in a Sigmoid/Softmax,
        else softmax (or sigmoid for multi-label models) applied here, never twice."""
        if self.session is None:
            raise StateError("this tagger only decodes; create it from a model folder to run inference")
        batch = batch.astype(self.graph.dtype, copy=False)
        scores = np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float64)
        if self.graph.activation:
            return scores
        if self.spec.multi_label:
            return 1.0 / (1.0 + np.exp(-scores))
        scores -= scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def select(self, probs: np.ndarray, options: TagOptions) -> list[tuple[list[Tag], Tag | None]]:
        """Scores → (tags, rating) per image: tags above their category's threshold, best first
        (at most top_k), excluded ones dropped; the top rating apart (taggers with categories)."""
        cats = self.categories or [None] * probs.shape[1]
        limit = options.top_k or (CLASSIFIER_TOP_K if self.categories is None else probs.shape[1])
        names = self._names(options.underscores_to_spaces)
        excluded = set(options.exclude_tags) | {display_name(t, underscores_to_spaces=True) for t in options.exclude_tags}
        floors = np.array([options.threshold_for(c) for c in cats])
        is_rating = np.array([c == "rating" for c in cats])
        ratings = np.flatnonzero(is_rating)
        out = []
        for p in probs:
            rating = None
            if len(ratings):
                best = int(ratings[np.argmax(p[ratings])])
                rating = Tag(names[best], round(float(p[best]), 6), "rating")
            keep = np.flatnonzero((p >= floors) & ~is_rating)
            order = keep[np.argsort(-p[keep], kind="stable")]
            tags = []
            for i, score in zip(order.tolist(), p[order].tolist()):
                if excluded and (names[i] in excluded or self.labels[i] in excluded):
                    continue
                tags.append(Tag(names[i], round(score, 6), cats[i]))
                if len(tags) == limit:
                    break
            out.append((tags, rating))
        return out

    def _names(self, underscores_to_spaces: bool) -> list[str]:
        """Every label as shown (`display_name`), worked out once per tagger and spelling."""
        cache = self.__dict__.setdefault("_shown_names", {})
        if underscores_to_spaces not in cache:
            cache[underscores_to_spaces] = [display_name(label, underscores_to_spaces=underscores_to_spaces)
                                            for label in self.labels]
        return cache[underscores_to_spaces]

    def top_k(self, probs: np.ndarray, options: TagOptions) -> list[list[Tag]]:
        return [tags for tags, _ in self.select(probs, options)]

    # -- the local engine -----------------------------------------------------------------

    def run(self, paths: Iterable[str | Path], options: TagOptions = TagOptions()) -> Iterator[TagResult]:
        """Tag files in order, decoding ahead in a thread pool while the session works."""
        paths = [str(p) for p in paths]
        workers = options.workers or max(1, (os.cpu_count() or 2))
        window = options.batch_size * 2 + workers
        decode = self.decode_hashed if options.content_hash else self._decode_unhashed

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imgai-decode") as pool:
            pending: deque[tuple[str, Future]] = deque()
            it = iter(paths)

            def fill():
                while len(pending) < window:
                    path = next(it, None)
                    if path is None:
                        return
                    pending.append((path, pool.submit(decode, path)))

            fill()
            while pending:
                batch = [pending.popleft() for _ in range(min(options.batch_size, len(pending)))]
                fill()
                decoded = [(path, *fut.result()) for path, fut in batch]
                ok = [(path, arr) for path, arr, err, _ in decoded if arr is not None]
                chosen = {}
                if ok:
                    probs = self.infer(np.stack([arr for _, arr in ok]))
                    chosen = dict(zip((p for p, _ in ok), self.select(probs, options)))
                for path, arr, err, digest in decoded:
                    tags, rating = chosen.get(path, ([], None))
                    yield TagResult(path, tags, err, rating, digest)

    def _decode_unhashed(self, path) -> tuple[np.ndarray | None, str | None, None]:
        return (*self.decode_safe(path), None)


_SHARED: OrderedDict[tuple, Tagger] = OrderedDict()
_SHARED_LOCK = threading.Lock()   # held while loading too, so a burst of first calls loads once


def _fingerprint(folder: Path) -> tuple:
    """Identifies the content of a model folder: each file's name, inode, size and mtime."""
    return tuple((p.name, st.st_ino, st.st_size, st.st_mtime_ns)
                 for p in sorted(folder.iterdir()) if p.is_file() for st in [p.stat()])


def tagging_folder(model_id: str | None = None) -> tuple[Path, str]:
    """The ONNX folder (model.onnx, labels.json, preprocess.json) of a model that may tag, and its id."""
    model = registry.get(model_id) if model_id else registry.default_model()
    if model is None:
        raise StateError("no default model to tag with; enable a converted model and set it as default "
                         f"({term('set-default')}), or name one ({term('model')}); a fresh data folder gets "
                         f"the demo model with {term('restore-demo')}")
    if not model.can_tag:
        why = []
        if model.type != registry.ONNX:
            why.append(f"it is {model.type} / {model.conversion} (convert it to ONNX first: {term('convert')})")
        if not model.valid:
            why.append("it has not passed validation")
        if not model.enabled:
            why.append(f"it is disabled (enable it: {term('enable')})")
        raise StateError(f"cannot tag with {model.id!r}: {'; '.join(why)}")
    return Path(model.onnx_path).parent, model.id


def model_info(model_id: str | None) -> dict:
    """What the tag output says about the model: id, name and how its images are prepared."""
    model = registry.get(model_id) if model_id else registry.default_model()
    if model is None:
        return {}
    record = (model.extra or {}).get("preprocess") or {}
    return {"model_id": model.id, "name": model.name, "preprocessing": record.get("spec"),
            "preprocessing_origin": record.get("origin"), "preprocessing_assumed": model.preprocessing_assumed}


def model_note(model_id: str | None) -> str | None:
    """A warning line when the model's preprocessing is assumed, else None."""
    info = model_info(model_id)
    if not info.get("preprocessing_assumed"):
        return None
    return (f"note: {info['model_id']}'s preprocessing is assumed ({info['preprocessing']}, inferred from its "
            f"ONNX graph); check the tags, then `imgai models preprocess {info['model_id']} --confirm` or edit it")


def collect_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and image files found under folders (recursively, sorted)."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        elif p.exists():
            found.append(p)
        else:
            raise ConfigError(f"{item} does not exist; give image files or folders")
    return found


def no_images(paths: Iterable[str | Path]) -> ConfigError:
    """The error for inputs that hold no image file: what was looked for, and where."""
    paths = list(paths)
    if not paths:
        return ConfigError("no images given; give image files or a folder")
    return ConfigError(f"no images in {', '.join(map(str, paths))} (looked for "
                       f"{', '.join(sorted(IMAGE_SUFFIXES))} files, folders searched recursively)")


def tag(paths: Iterable[str | Path], *, model_id: str | None = None, options: TagOptions = TagOptions(),
        on_result: Callable[[int, int, TagResult], None] | None = None, actor=None) -> list[TagResult]:
    """Tag files and folders with a registered model (the default when `model_id` is None). A
    public app's visitors tag with shared models and their own, within the per-call quotas."""
    from .. import access, quotas

    actor = access.resolve(actor)
    model = registry.get(model_id) if model_id else registry.default_model()
    if model is not None:
        access.check(actor, "tag", model)
    paths = list(paths)
    if any(Path(p).is_dir() for p in paths):
        access.check(actor, "server.paths")
    files = collect_images(paths)
    quotas.check_tag_call(files, limited=actor.limited)
    tagger = Tagger.for_model(model_id)
    results = []
    for i, result in enumerate(tagger.run(files, options)):
        results.append(result)
        if on_result:
            on_result(i + 1, len(files), result)
    return results


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


def stream_here(paths: Iterable[str | Path], *, model_id: str | None = None, options: TagOptions = TagOptions(),
                engine=None) -> TagStream:
    """The local engine's tagging (`imgai.engines.WORK`): in input order, in this process."""
    files = [str(p) for p in collect_images(paths)]
    return TagStream(files, Tagger.for_model(model_id).run(files, options))
