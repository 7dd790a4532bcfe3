"""The support sweep: which architectures imgai offers is decided by converting them.

Each candidate (sweep_candidates.py) is built randomly initialised, saved in the exact format the
Hub serves (config.json + model.safetensors + preprocessor_config.json, or timm's config.json
with its pretrained_cfg), then loaded, exported and validated by imgai's own convert code
(load_model → export_onnx → validate_files: onnx checker, onnxruntime session, logits vs PyTorch
within the validation tolerance, same top-1). The outcome, with seconds and the reason for a
failure, is written to support_table.json, which detection, Browse, the CLI and the README read.

Run by `make support-table` or `python bench/support_sweep.py [--only PATTERN]`.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..log import get_logger
from .architectures import SUPPORT_TABLE_PATH, Detected
from .sweep_candidates import Candidate, all_candidates

LOG = get_logger("imgai.sweep")
LABELS = ["cat", "dog", "bird"]
TIMEOUT_S = 600


@dataclass
class Outcome:
    library: str
    name: str
    family: str
    patterns: list[str]
    passed: bool
    seconds: float
    reason: str | None = None
    shrunk: str | None = None          # what the sweep changed from the real configuration
    exporter: str | None = None
    parameters: int | None = None
    onnx_bytes: int | None = None
    max_abs_diff: float | None = None


def build_folder(candidate: Candidate, folder: Path) -> tuple[Detected, int]:
    """Save a randomly initialised `candidate` in the Hub's format; returns what detection would say
    of it and its parameter count."""
    import torch

    torch.manual_seed(0)
    if candidate.library == "transformers":
        return _build_transformers(candidate, folder)
    return _build_timm(candidate, folder)


def _build_transformers(candidate: Candidate, folder: Path) -> tuple[Detected, int]:
    from transformers import AutoConfig, AutoModelForImageClassification

    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    # through the constructor, so derived fields (stage names, backbone out_features) follow
    config = AutoConfig.for_model(candidate.name, **candidate.shrink)
    head = MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES[candidate.name]
    config.architectures = [head[0] if isinstance(head, (tuple, list)) else head]   # as the Hub's config.json has
    config.num_labels = len(LABELS)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {v: k for k, v in enumerate(LABELS)}
    model = AutoModelForImageClassification.from_config(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    size = _image_size(config)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
        "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}))
    arch = type(model).__name__
    params = sum(p.numel() for p in model.parameters())
    return Detected("transformers", arch, candidate.family, candidate.name), params


def _image_size(config) -> int:
    for source in (config, getattr(config, "vision_config", None)):
        size = getattr(source, "image_size", None) if source is not None else None
        if isinstance(size, (list, tuple)):
            size = size[0]
        if isinstance(size, int) and size > 0:
            return size
    return 224


def _build_timm(candidate: Candidate, folder: Path) -> tuple[Detected, int]:
    import timm
    from timm.models._hub import save_for_hf

    model = timm.create_model(candidate.name, pretrained=False, num_classes=len(LABELS), **candidate.shrink).eval()
    save_for_hf(model, folder, model_config={"label_names": LABELS},
                model_args={k: list(v) if isinstance(v, tuple) else v for k, v in candidate.shrink.items()} or None,
                safe_serialization=True)
    params = sum(p.numel() for p in model.parameters())
    return Detected("timm", candidate.name, candidate.family), params


def run_candidate(candidate: Candidate, *, timeout_s: int = TIMEOUT_S) -> Outcome:
    """Build, save, load, export and validate one candidate with imgai's convert code."""
    from .convert import export_onnx
    from .labels import write_labels
    from .load import load_model
    from .validate import validate_files

    outcome = Outcome(candidate.library, candidate.name, candidate.family, list(candidate.patterns), False, 0.0,
                      shrunk=_describe_shrink(candidate.shrink))
    work = Path(tempfile.mkdtemp(prefix=f"imgai-sweep-{candidate.name}-"))
    t0 = time.perf_counter()

    def expired(signum, frame):
        raise TimeoutError(f"took more than {timeout_s} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(timeout_s)
    stage = "building"
    try:
        source, out = work / "hub", work / "onnx"
        source.mkdir()
        out.mkdir()
        detected, outcome.parameters = build_folder(candidate, source)
        stage = "loading"
        loaded = load_model(source, detected=detected)
        stage = "exporting"
        outcome.exporter = export_onnx(loaded, out)
        write_labels(loaded.labels, out / "labels.json")
        loaded.preprocess.save(out / "preprocess.json")
        stage = "validating"
        result = validate_files(out, reference=loaded)
        outcome.max_abs_diff = result.max_abs_diff
        outcome.onnx_bytes = sum(f.stat().st_size for f in out.glob("model.onnx*"))
        outcome.passed = result.passed
        if not result.passed:
            outcome.reason = "validation failed: " + "; ".join(result.problems)
    except Exception as exc:   # any failure of any library is the candidate's result, recorded
        first = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else ""
        outcome.reason = f"{stage} failed: {type(exc).__name__}: {first}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        outcome.seconds = round(time.perf_counter() - t0, 1)
        shutil.rmtree(work, ignore_errors=True)
    LOG.info("sweep %s: %s in %.1fs%s", candidate.key, "passed" if outcome.passed else "failed", outcome.seconds,
             f" ({outcome.reason})" if outcome.reason else "")
    return outcome


def _describe_shrink(shrink: dict) -> str | None:
    if not shrink:
        return None
    return ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in shrink.items())


def select(pattern: str | None) -> list[Candidate]:
    """The candidates matching any of the comma-separated fnmatch `pattern`s (name, library:name or
    family); all of them for None."""
    candidates = list(all_candidates())
    if not pattern:
        return candidates
    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    return [c for c in candidates if any(fnmatch.fnmatch(c.name, p) or fnmatch.fnmatch(c.key, p)
                                         or fnmatch.fnmatch(c.family.lower(), p.lower()) for p in pats)]


def run_sweep(candidates: list[Candidate], *, table_path: Path = SUPPORT_TABLE_PATH, progress=None) -> list[Outcome]:
    """Run `candidates` and merge their outcomes into the table at `table_path` (written by rename)."""
    import onnx
    import onnxruntime
    import timm
    import torch
    import transformers

    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "timm": timm.__version__,
                "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    outcomes = []
    for i, candidate in enumerate(candidates, 1):
        outcome = run_candidate(candidate)
        outcomes.append(outcome)
        write_table([outcome], table_path, versions)     # after each: a long sweep cut short keeps its work
        if progress:
            progress(i, len(candidates), outcome)
    return outcomes


def write_table(outcomes: list[Outcome], table_path: Path, versions: dict) -> None:
    """Merge `outcomes` into the table (one row per library + name, in candidate order); by rename."""
    table = read_table(table_path)
    by_key = {(e["library"], e["name"]): e for e in table.get("candidates", [])}
    for o in outcomes:
        by_key[(o.library, o.name)] = asdict(o)
    order = {c.key: i for i, c in enumerate(all_candidates())}
    rows = sorted(by_key.values(), key=lambda e: order.get(f"{e['library']}:{e['name']}", len(order)))
    table = {"about": "written by imgai/classify/sweep.py (make support-table); do not edit by hand",
             "versions": versions, "candidates": rows}
    tmp = table_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    tmp.replace(table_path)


def read_table(path: Path = SUPPORT_TABLE_PATH) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
