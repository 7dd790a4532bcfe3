"""Adding a model to the registry: a local folder, a Hub id, or a ready-made ONNX model.

`add_model("org/name@rev")` downloads with `snapshot_download` into the standard HF cache;
`add_model("./folder")` copies what the model needs into the data folder. Everything is checked
before it is registered, and nothing is half-registered.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import access, registry
from .access import Actor
from .classify.architectures import Detected, detect_folder
from .classify.labels import (TAGS_FILE, find_label_file, is_multi_label_file, read_labels, read_tag_categories,
                              write_labels)
from .classify.load import load_pickle_weights, weights_file
from .classify.preprocess import PreprocessSpec
from .config import paths
from .errors import ConfigError, StateError, UnsupportedModelError, ValidationError
from .hub_id import HUB_ID
from .log import get_logger
from .staging import move_into_place, staging_folder
from .words import term

# The files a PyTorch model needs; pickles are fetched only when no safetensors exist.
NEEDED_FILES = ["config.json", "preprocessor_config.json", "*.safetensors", "*.safetensors.index.json",
                "labels.json", "labels.txt", "selected_tags.csv", "README.md", "*.onnx", "*.onnx_data",
                "preprocess.json"]
LOG = get_logger("imgai.sources")


def add_model(source: str, *, name: str | None = None, preprocess: Path | None = None,
              preprocess_options: dict | None = None, actor: Actor | None = None) -> registry.Model:
    """Add a model from a local folder or a Hub id (`org/name` or `org/name@revision`). Only the
    local owner may name the server's folders; a public app's visitors name Hub ids, and the model
    is theirs. For a ready-made ONNX model, `preprocess` (a preprocess.json) or `preprocess_options`
    (PreprocessSpec.from_options keywords, plus `size`) say how to prepare its images."""
    actor = access.check(actor, "models.add")
    if not source.strip():
        raise ConfigError("nothing to add: give a Hub id like 'org/name' (optionally '@revision')"
                          + (" or a local folder" if actor.can("server.paths") else ""))
    local = Path(source).expanduser()
    if actor.can("server.paths") and local.exists():
        folder = local.resolve()
        existing = registry.find_by_source(str(folder))
        if existing and name and name != existing.name:
            raise StateError(f"the folder {folder} is in the registry already, as {existing.name!r} "
                             f"({existing.id}); to add it as {name!r}, remove that one first ({term('remove')})")
        return add_folder(folder, source=str(folder), name=name, preprocess=preprocess, copy=True,
                          preprocess_options=preprocess_options)
    m = HUB_ID.match(source.strip())
    if not m:
        if local.is_absolute() or source.strip().startswith((".", "~")):
            access.check(actor, "server.paths")
        raise ConfigError(f"the source {source!r} is neither an existing folder nor a Hub id like 'org/name' or "
                          "'org/name@revision'")
    if actor.limited:   # a visitor's download goes through the job, which checks its size first
        raise ConfigError(f"download {m['repo']} with the Download button (a job, within your quotas); "
                          "adding by Hub id here is for the app's owner")
    folder = download_snapshot(m["repo"], revision=m["rev"])
    return add_folder(folder, source=f"{m['repo']}@{folder.name}", name=name or m["repo"].split("/")[-1],
                      preprocess=preprocess, preprocess_options=preprocess_options, copy=False, owner=actor.owner)


def download_snapshot(repo_id: str, *, revision: str | None = None, token: str | None = None) -> Path:
    """The model's files in the standard HF cache (no pickle when safetensors exist). Hub failures
    are imgai's typed errors (hub.client.translate): a missing repo is HubNotFoundError."""
    from huggingface_hub import snapshot_download

    from .hub.client import hub_errors

    with hub_errors(repo_id, revision=revision, action="download"):
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=NEEDED_FILES, token=token))
        if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.onnx")):
            folder = Path(snapshot_download(repo_id, revision=revision, token=token,
                                            allow_patterns=NEEDED_FILES + ["pytorch_model.bin"]))
    return folder


def add_folder(folder: Path, *, source: str, name: str | None = None, model_id: str | None = None,
               preprocess: Path | None = None, preprocess_options: dict | None = None, copy: bool = True,
               owner: str | None = None) -> registry.Model:
    """Register a model folder for `owner` (None: shared). Same `source` twice registers nothing
    twice. Internal: the checked callers are add_model and the download job."""
    folder = Path(folder)
    existing = registry.find_by_source(source, owner=owner)
    if existing:
        return existing
    detected = detect_folder(folder)
    name = name or folder.name
    if detected.library == "onnx":
        return _add_onnx(folder, detected, source=source, name=name, model_id=model_id, preprocess=preprocess,
                         preprocess_options=preprocess_options, owner=owner)
    _check_pytorch_folder(folder, detected)
    if not copy:
        model = registry.create(name=name, source=source, architecture=detected.architecture,
                                library=detected.library, pytorch_path=str(folder), model_id=model_id,
                                owner=owner)
        LOG.info("added %s from %s (%s %s)", model.id, source, detected.library, detected.architecture)
        return model
    with staging_folder(paths().tmp, prefix="add-") as staging:
        _copy_needed(folder, staging)
        model = registry.create(name=name, source=source, architecture=detected.architecture,
                                library=detected.library, model_id=model_id, owner=owner)
        model = _move_in(model, staging, "pytorch")
    LOG.info("added %s from %s (%s %s)", model.id, source, detected.library, detected.architecture)
    return model


def _move_in(model: registry.Model, staging: Path, kind: str) -> registry.Model:
    """The new model's files into `models/<id>/<kind>/` and the row pointed at them; if either
    fails, the row goes too (the registry never lists a model without its files)."""
    target = paths().model_dir(model.id) / kind
    try:
        move_into_place(staging, target)
        if kind == "pytorch":
            return registry.update(model.id, pytorch_path=str(target))
        return registry.update(model.id, onnx_path=str(target / "model.onnx"))
    except BaseException:
        registry.remove(model.id)
        raise


def _check_pytorch_folder(folder: Path, detected: Detected) -> None:
    path = weights_file(folder)
    if path.suffix == ".bin":
        load_pickle_weights(path)   # refuses anything but plain tensors, before anything is registered
    elif path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                if not list(f.keys()):
                    raise UnsupportedModelError(f"{path} holds no tensors")
        except UnsupportedModelError:
            raise
        except Exception as exc:
            raise UnsupportedModelError(f"{path} is not a readable safetensors file: {exc}") from exc
    if detected.library == "transformers" and not (folder / "preprocessor_config.json").is_file():
        raise UnsupportedModelError(f"{folder} has no preprocessor_config.json; imgai needs it to preprocess "
                                    "images as the model expects")


def _copy_needed(folder: Path, dest: Path) -> None:
    has_safetensors = any(folder.glob("*.safetensors"))
    for item in folder.iterdir():
        if not item.is_file() or item.is_symlink() and not item.resolve().is_file():
            continue
        wanted = any(Path(item.name).match(p) for p in NEEDED_FILES + ["LICENSE*"])
        if item.name == "pytorch_model.bin" and not has_safetensors:
            wanted = True
        if wanted:
            shutil.copyfile(item, dest / item.name)


# -- ready-made ONNX models -----------------------------------------------------------------

def _add_onnx(folder: Path, detected: Detected, *, source: str, name: str, model_id: str | None,
              preprocess: Path | None, preprocess_options: dict | None = None,
              owner: str | None = None) -> registry.Model:
    from .classify.onnx_file import check_onnx_file, external_data_files
    from .classify.onnx_graph import read_graph
    from .classify.validate import validate

    onnx_files = sorted(folder.glob("*.onnx"))
    if len(onnx_files) != 1:
        raise UnsupportedModelError(f"{folder} has {len(onnx_files)} .onnx files "
                                    f"({', '.join(p.name for p in onnx_files)}); expected exactly one")
    label_file = find_label_file(folder)
    if label_file is None:
        raise ValidationError(f"{folder} has no label file; add labels.json, labels.txt or selected_tags.csv")
    labels = read_labels(label_file)
    check_onnx_file(onnx_files[0])
    graph = read_graph(onnx_files[0])
    categories = read_tag_categories(label_file) if label_file.name == TAGS_FILE else None
    if categories is not None and graph.output_size is not None and graph.output_size != len(labels):
        raise ValidationError(f"{label_file.name} has {len(labels)} tags but {onnx_files[0].name} outputs "
                              f"{graph.output_size} scores; they must be the same list")
    choice = _onnx_preprocess(folder, graph, preprocess, preprocess_options, label_file, tagger=categories is not None)
    with staging_folder(paths().tmp, prefix="add-") as staging:
        shutil.copyfile(onnx_files[0], staging / "model.onnx")
        for extra in external_data_files(onnx_files[0]):
            shutil.copyfile(extra, staging / extra.relative_to(folder.resolve()))
        write_labels(labels, staging / "labels.json")
        if categories is not None:
            shutil.copyfile(label_file, staging / TAGS_FILE)
        choice.spec.save(staging / "preprocess.json")
        model = registry.create(name=name, source=source, architecture="onnx", library="onnx",
                                type=registry.ONNX, conversion=registry.NOT_APPLICABLE, model_id=model_id,
                                owner=owner, extra={"preprocess": choice.to_dict(), "graph": graph.to_dict()})
        model = _move_in(model, staging, "onnx")
    LOG.info("added ready-made ONNX model %s from %s (%s; preprocessing: %s from %s%s)", model.id, source,
             graph.describe(), choice.spec.describe(), choice.origin, ", assumed" if choice.assumed else "")
    for reason in choice.ignored:
        LOG.info("%s: ignored %s", model.id, reason)
    validate(model.id)   # the console validates what it just registered, for whoever owns it
    return registry.get(model.id)


def _onnx_preprocess(folder: Path, graph, given: Path | None, options: dict | None, label_file: Path, *,
                     tagger: bool):
    """The chosen preprocessing (imgai.classify.onnx_preprocess), multi_label settled: the graph's
    final Sigmoid/Softmax decides, else a selected_tags.csv means multi-label unless the spec says."""
    from .classify.onnx_preprocess import choose, explicit_multi_label

    spec = None
    if given is not None:
        if not Path(given).is_file():
            raise ConfigError(f"--preprocess {given} does not exist")
        spec = PreprocessSpec.load(given)
    choice = choose(folder, graph, given=spec, options=options, tagger=tagger)
    if graph.activation:
        choice.spec.multi_label = graph.activation == "sigmoid"
    elif is_multi_label_file(label_file) and not explicit_multi_label(folder, choice, given):
        choice.spec.multi_label = True
    return choice
