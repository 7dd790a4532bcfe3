"""Push a converted classifier to the Hub: `model.onnx`, `labels.json`, `preprocess.json` and a
generated `README.md` card, in one commit through `push_folder`.

The card is rendered from `templates/classifier.md.j2` (metadata through `ModelCardData`) and
written next to the local model first, so the local copy and the Hub copy carry the same card.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from .. import access, registry
from ..access import Actor
from ..config import paths
from ..errors import ImgaiError, StateError, UnknownModelError
from ..hub_id import HUB_ID
from ..log import get_logger
from ..staging import write_text
from .push import PushResult, push_folder
from ..words import term

LOG = get_logger("imgai.hub")
TEMPLATE = "classifier.md.j2"
PUSHED_FILES = ("model.onnx", "labels.json", "preprocess.json", "README.md")


def _source_repo(model: registry.Model) -> tuple[str | None, str | None]:
    repo, _, rev = (model.source or "").partition("@")
    return (repo, rev or None) if HUB_ID.match(repo) and not Path(repo).exists() else (None, None)


def _training(model: registry.Model) -> dict | None:
    """A model trained here: its run's starting weights (repo, commit) and the epoch it kept."""
    runs = (model.extra or {}).get("runs") or {}
    run = runs.get(str((model.extra or {}).get("current_run")))
    if not run:
        return None
    repo, _, commit = (run.get("starting_weights_source") or "").partition("@")
    return {"weights_repo": repo or None, "weights_commit": commit or None, "starting_weights": run.get("starting_weights"),
            "best_epoch": run.get("best_epoch"), "epochs": run.get("epochs"), "val_accuracy": run.get("val_accuracy")}


def _family(model: registry.Model) -> str | None:
    from ..classify.architectures import detect_folder

    if model.pytorch_path and Path(model.pytorch_path).is_dir():
        try:
            return detect_folder(Path(model.pytorch_path)).family
        except (ImgaiError, OSError) as exc:     # the card then names the architecture, not its family
            LOG.info("no family for %s: %s", model.id, exc)
            return None
    return None


def measure_speed(onnx_path: Path, input_shape: tuple[int, ...], *, batches=(1, 8), repeats: int = 5) -> dict:
    """Time the model with onnxruntime on this machine (after a warm-up run)."""
    import numpy as np
    import onnxruntime as ort

    from ..classify.session import create_session, run_logits

    session = create_session(onnx_path)
    rows = []
    for batch in batches:
        x = np.random.default_rng(0).standard_normal((batch, *input_shape)).astype(np.float32)
        run_logits(session, x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            run_logits(session, x)
        ms = (time.perf_counter() - t0) * 1000 / repeats
        rows.append({"batch": batch, "ms": ms, "images_per_s": batch * 1000 / ms if ms else 0.0})
    cpu = platform.processor() or platform.machine()
    return {"rows": rows, "onnxruntime": ort.__version__, "provider": session.get_providers()[0],
            "machine": f"{cpu}, {os.cpu_count()} CPU threads, {platform.system()}"}


def render_classifier_card(model: registry.Model, *, repo_id: str, revision: str | None = None):
    """The `huggingface_hub.ModelCard` for a converted model."""
    from .. import __version__
    from ..cards import render_card
    from ..classify.labels import read_labels
    from ..classify.preprocess import PreprocessSpec
    from .client import endpoint

    onnx_dir = Path(model.onnx_path).parent
    labels = read_labels(onnx_dir / "labels.json")
    spec = PreprocessSpec.load(onnx_dir / "preprocess.json")
    original = _original(model)
    base_model, base_revision = _source_repo(original)
    training = _training(original)
    if training and training["weights_repo"]:
        training["weights_url"] = f"{endpoint()}/{training['weights_repo']}"
    family = _family(original)
    license_ = model.extra.get("license") or (model.extra.get("hub") or {}).get("license")
    tags = ["onnx", "image-classification", "imgai"] + ([family.lower()] if family else []) + \
           ([original.library] if original.library not in ("onnx",) else []) + \
           (["int8", "quantized"] if model.precision == registry.INT8 else [])
    h, w = spec.input_size
    shape = (3, h, w) if spec.layout == "NCHW" else (h, w, 3)
    validation = model.validation
    card_data = {"base_model": base_model or (training or {}).get("weights_repo"), "library_name": "onnx",
                 "pipeline_tag": "image-classification", "license": license_, "tags": tags}
    return render_card(
        TEMPLATE, card_data=card_data, model_name=model.name, repo_id=repo_id, revision=revision,
        base_model=base_model, base_revision=base_revision, source=original.source,
        source_url=f"{endpoint()}/{base_model}" if base_model else None, architecture=model.architecture,
        library=original.library, family=family, precision=model.precision,
        quantized_from=model.extra.get("quantized_from"), quantization=model.extra.get("quantization") or {},
        int8_scope=_int8_scope(model),
        vs_fp32=model.vs_fp32 or {}, exporter=model.extra.get("exporter"),
        opset=model.extra.get("opset"), num_labels=len(labels), labels_preview=labels[:30],
        more_labels=max(0, len(labels) - 30), multi_label=spec.multi_label, preprocess=spec.to_dict(),
        layout=spec.layout, input_name=_input_name(Path(model.onnx_path)), validation=validation,
        validated_at=time.strftime("%Y-%m-%d", time.localtime(model.validated_at)) if model.validated_at else "",
        speed=measure_speed(Path(model.onnx_path), shape), imgai_version=__version__, training=training,
        agreement_percent=registry.agreement_percent)


def _int8_scope(model: registry.Model) -> str | None:
    """What the INT8 copy quantized and kept in float, in words (None: not recorded, e.g. older copies)."""
    from ..classify.quantize_scope import scope_text

    scope = (model.extra.get("quantization") or {}).get("scope")
    return scope_text(scope) if scope else None


def _original(model: registry.Model) -> registry.Model:
    """The model an INT8 copy was made from (for its source and family), else the model itself."""
    base = model.extra.get("quantized_from")
    if base:
        try:
            return registry.get(base)
        except UnknownModelError:       # removed since: the INT8 copy describes itself
            return model
    return model


def _input_name(onnx_path: Path) -> str:
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return next((i.name for i in graph.input if i.name not in inits), "pixel_values")


def write_card(model_id: str, *, repo_id: str, revision: str | None = None) -> Path:
    """Render the card and put it next to the local ONNX model (temp file + rename)."""
    model = _pushable(model_id)
    card = render_classifier_card(model, repo_id=repo_id, revision=revision)
    target = Path(model.onnx_path).parent / "README.md"
    return write_text(target, str(card))


def _pushable(model_id: str) -> registry.Model:
    model = registry.get(model_id)
    if model.type != registry.ONNX or not model.onnx_path or not Path(model.onnx_path).is_file():
        raise StateError(f"cannot push {model_id!r}: it is {model.type} / {model.conversion}; convert it to ONNX "
                         f"first ({term('convert')})")
    if not model.valid:
        raise StateError(f"cannot push {model_id!r}: its ONNX model has not passed validation; run "
                         "`imgai models validate ID` first")
    return model


def push_model(model_id: str, repo_id: str, *, token: str | None = None, private: bool = False,
               revision: str | None = None, actor: Actor | None = None) -> PushResult:
    """`imgai push MODEL_ID --repo ORG/NAME`: the converted model and its card, in one commit.
    A visitor pushes shared models or their own, with their own token."""
    from ..classify.onnx_file import external_data_files

    access.check(actor, "models.push", registry.get(model_id))
    model = _pushable(model_id)
    from ..hub_id import split_revision

    split_revision(repo_id)
    card = write_card(model_id, repo_id=repo_id, revision=revision)
    onnx_dir = card.parent
    staging = Path(tempfile.mkdtemp(dir=paths().tmp, prefix=f"push-{model_id}-"))
    try:
        extra = [p.relative_to(onnx_dir.resolve()).as_posix()
                 for p in external_data_files(Path(model.onnx_path))]
        for name in list(PUSHED_FILES) + extra:
            _link_or_copy(onnx_dir / name, staging / name)
        result = push_folder(staging, repo_id, token=token, private=private, revision=revision,
                             commit_message=f"Upload {model.name} (ONNX) with its card, from imgai")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pushes = list(model.extra.get("pushes", []))[-9:]
    pushes.append({"repo_id": repo_id, "revision": result.revision, "commit": result.commit_oid, "at": time.time()})
    registry.update(model_id, extra={**registry.get(model_id).extra, "pushes": pushes})
    LOG.info("pushed %s to %s@%s (commit %s)", model_id, repo_id, result.revision, result.commit_oid)
    return result


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
