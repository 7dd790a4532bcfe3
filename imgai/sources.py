"""Adding a model to the registry: a local folder, a Hub id, or a ready-made ONNX model.

`add_model("org/name@rev")` downloads with `snapshot_download` into the standard HF cache;
`add_model("./folder")` copies what the model needs into the data folder. Everything is checked
before it is registered, and nothing is half-registered.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import access, quotas, registry
from .access import Actor
from .classify.architectures import Detected, detect_folder
from .classify.labels import find_label_file, is_multi_label_file, read_labels, write_labels
from .classify.load import read_json, weights_file, load_pickle_weights
from .classify.preprocess import PreprocessSpec
from .config import paths
from .errors import (ConfigError, HubUnavailableError, UnknownModelError, UnsupportedModelError,
                     ValidationError)
from .hub_id import HUB_ID
from .log import get_logger

# The files a PyTorch model needs; pickles are fetched only when no safetensors exist.
NEEDED_FILES = ["config.json", "preprocessor_config.json", "*.safetensors", "*.safetensors.index.json",
                "labels.json", "labels.txt", "selected_tags.csv", "README.md", "*.onnx", "*.onnx_data",
                "preprocess.json"]
LOG = get_logger("imgai.sources")


def add_model(source: str, *, name: str | None = None, preprocess: Path | None = None,
               actor: Actor | None = None) -> registry.Model:
    """Add a model from a local folder or a Hub id (`org/name` or `org/name@revision`). Only the
    local owner may name the server's folders; a public app's visitors name Hub ids, and the model
    is theirs."""
    actor = access.check(actor, "models.add")
    local = Path(source).expanduser()
    if actor.can("server.paths") and local.exists():
        folder = local.resolve()
        return add_folder(folder, source=str(folder), name=name, preprocess=preprocess, copy=True)
    m = HUB_ID.match(source.strip())
    if not m:
        if local.is_absolute() or source.strip().startswith((".", "~")):
            access.check(actor, "server.paths")
        raise ConfigError(f"{source!r} is neither an existing folder nor a Hub id like 'org/name' or "
                          "'org/name@revision'")
    if actor.limited:   # a visitor's download goes through the job, which checks its size first
        raise ConfigError(f"download {m['repo']} with the Download button (a job, within your quotas); "
                          "adding by Hub id here is for the app's owner")
    folder = download_snapshot(m["repo"], revision=m["rev"])
    return add_folder(folder, source=f"{m['repo']}@{folder.name}", name=name or m["repo"].split("/")[-1],
                      preprocess=preprocess, copy=False, owner=actor.owner)


def download_snapshot(repo_id: str, *, revision: str | None = None, token: str | None = None) -> Path:
    """The model's files in the standard HF cache (no pickle when safetensors exist)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=NEEDED_FILES, token=token))
        if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.onnx")):
            folder = Path(snapshot_download(repo_id, revision=revision, token=token,
                                            allow_patterns=NEEDED_FILES + ["pytorch_model.bin"]))
    except GatedRepoError as exc:
        raise HubUnavailableError(f"{repo_id} is gated: accept its terms on the Hub and sign in") from exc
    except RepositoryNotFoundError as exc:
        raise UnknownModelError(f"no Hub repo {repo_id!r} (or it is private: sign in)") from exc
    except RevisionNotFoundError as exc:
        raise UnknownModelError(f"{repo_id} has no revision {revision!r}") from exc
    except LocalEntryNotFoundError as exc:
        raise HubUnavailableError(f"the Hub cannot be reached and {repo_id} is not in the local cache; "
                                  "connect, or add a local folder instead") from exc
    return folder


def add_folder(folder: Path, *, source: str, name: str | None = None, model_id: str | None = None,
               preprocess: Path | None = None, copy: bool = True, owner: str | None = None) -> registry.Model:
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
                         owner=owner)
    _check_pytorch_folder(folder, detected)
    if not copy:
        model = registry.create(name=name, source=source, architecture=detected.architecture,
                                library=detected.library, pytorch_path=str(folder), model_id=model_id,
                                owner=owner)
        LOG.info("added %s from %s (%s %s)", model.id, source, detected.library, detected.architecture)
        return model
    staging = _staging()
    try:
        _copy_needed(folder, staging)
        model = registry.create(name=name, source=source, architecture=detected.architecture,
                                library=detected.library, model_id=model_id, owner=owner)
        target = paths().model_dir(model.id) / "pytorch"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)
            model = registry.update(model.id, pytorch_path=str(target))
        except BaseException:
            registry.remove(model.id)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    LOG.info("added %s from %s (%s %s)", model.id, source, detected.library, detected.architecture)
    return model


def _staging() -> Path:
    return Path(tempfile.mkdtemp(dir=paths().tmp, prefix="add-"))


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
              preprocess: Path | None, owner: str | None = None) -> registry.Model:
    from .classify.onnx_file import check_onnx_file, external_data_files
    from .classify.validate import validate

    onnx_files = sorted(folder.glob("*.onnx"))
    if len(onnx_files) != 1:
        raise UnsupportedModelError(f"{folder} has {len(onnx_files)} .onnx files "
                                    f"({', '.join(p.name for p in onnx_files)}); expected exactly one")
    label_file = find_label_file(folder)
    if label_file is None:
        raise ValidationError(f"{folder} has no label file; add labels.json, labels.txt or selected_tags.csv")
    labels = read_labels(label_file)
    spec = _onnx_preprocess(folder, preprocess, multi_label=is_multi_label_file(label_file))
    check_onnx_file(onnx_files[0])
    staging = _staging()
    try:
        shutil.copyfile(onnx_files[0], staging / "model.onnx")
        for extra in external_data_files(onnx_files[0]):
            shutil.copyfile(extra, staging / extra.relative_to(folder.resolve()))
        write_labels(labels, staging / "labels.json")
        spec.save(staging / "preprocess.json")
        model = registry.create(name=name, source=source, architecture="onnx", library="onnx",
                                type=registry.ONNX, conversion=registry.NOT_APPLICABLE, model_id=model_id,
                                owner=owner)
        target = paths().model_dir(model.id) / "onnx"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)
            registry.update(model.id, onnx_path=str(target / "model.onnx"))
        except BaseException:
            registry.remove(model.id)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    LOG.info("added ready-made ONNX model %s from %s", model.id, source)
    validate(model.id)   # the console validates what it just registered, for whoever owns it
    return registry.get(model.id)


def _onnx_preprocess(folder: Path, given: Path | None, *, multi_label: bool) -> PreprocessSpec:
    """The preprocessing of a ready-made ONNX model: given, or read from the folder's configs.
    A selected_tags.csv label file means a multi-label (sigmoid) tagger unless the spec says otherwise."""
    import json

    spec_file = Path(given) if given is not None else folder / "preprocess.json"
    if spec_file.is_file():
        spec = PreprocessSpec.load(spec_file)
        explicit = "multi_label" in json.loads(spec_file.read_text())
    elif given is not None:
        raise ConfigError(f"--preprocess {given} does not exist")
    elif (folder / "preprocessor_config.json").is_file():
        spec, explicit = PreprocessSpec.from_transformers(read_json(folder / "preprocessor_config.json")), False
    elif (folder / "config.json").is_file() and "pretrained_cfg" in read_json(folder / "config.json"):
        spec, explicit = PreprocessSpec.from_timm(read_json(folder / "config.json")["pretrained_cfg"]), False
    else:
        raise ConfigError(f"{folder} says nothing about preprocessing; give --preprocess FILE "
                          "(a preprocess.json: resize, crop, mean, std, interpolation)")
    if multi_label and not explicit:
        spec.multi_label = True
    return spec
