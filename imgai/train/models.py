"""Trainable models in the registry, and the versioned folders their runs write.

    models/<id>/checkpoints/run-<n>/checkpoint.pt   one per run, rewritten after every epoch (Resume)
    models/<id>/pytorch/runs/<n>/                    a finished run: config.json + model.safetensors

`pytorch_path` always points at the newest finished run; earlier runs stay as they were.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .. import access, registry
from ..access import Actor
from ..config import paths
from ..errors import ConfigError, StateError, UnknownModelError
from ..registry import Model
from ..staging import move_into_place, staged_file, staging_folder
from .architectures import get_architecture
from .images import CROP_PCT, INTERPOLATION

SOURCE_PREFIX = "trained:"
UNTRAINED, TRAINING = "Untrained", "Training"
TRAINED = registry.TRAINED    # the one state in which the registry lets a trained model convert
FAILED = registry.FAILED      # a training that failed reads as a failed conversion does: "Failed"


def is_trainable(model: Model) -> bool:
    return model.source.startswith(SOURCE_PREFIX)


def create_model(name: str, *, architecture: str, model_args: dict | None = None,
                 actor: Actor | None = None) -> Model:
    """"Convert To Model": a named, untrained model of `architecture` in the registry, the actor's
    (shared for the local owner and admins)."""
    actor = access.check(actor, "train.create")
    return _create(name, architecture=architecture, model_args=model_args, owner=actor.owner)


def _create(name: str, *, architecture: str, model_args: dict | None, owner: str | None) -> Model:
    arch = get_architecture(architecture)
    if not name or not name.strip():
        raise ConfigError("the model needs a name, e.g. 'my-shapes'")
    name = name.strip()
    clash = [m for m in registry.list_models() if m.name == name or m.id == name]
    if clash:
        raise ConfigError(f"a model named {name!r} exists already (id {clash[0].id}); pick another name")
    if model_args:
        if not isinstance(model_args, dict):
            raise ConfigError(f"model_args must be a JSON object of timm keyword arguments, not {model_args!r}")
        from .architectures import build_model

        build_model(arch, 2, model_args=model_args)          # fails now, not in the job, if they do not fit
    from .pretrained import prepare_weights

    model = registry.create(name=name, source=f"{SOURCE_PREFIX}{arch.key}", architecture=arch.timm_name,
                            library="timm", training=UNTRAINED, pytorch_path=None, owner=owner,
                            extra={"train_architecture": arch.key, "model_args": model_args or {}})
    plan = prepare_weights(arch.key, model_args=model_args, owner=owner)
    return registry.update(model.id, extra={**model.extra, "weights": plan.to_dict()})


def resolve_model(name_or_id: str) -> Model:
    """A trainable model by id or by name."""
    try:
        model = registry.get(name_or_id)
    except UnknownModelError:
        named = [m for m in registry.list_models() if m.name == name_or_id]
        if not named:
            trainable = ", ".join(m.name for m in registry.list_models() if is_trainable(m)) or "none yet"
            raise UnknownModelError(f"no model named {name_or_id!r} (trainable models: {trainable}); "
                                    "make one with `imgai train create --architecture ARCH --name NAME`") from None
        model = named[0]
    if not is_trainable(model):
        raise StateError(f"{model.id!r} was not made for training here (source {model.source}); make a trainable "
                         "model with `imgai train create --architecture ARCH --name NAME`")
    return model


def fork_for_retraining(model: Model) -> Model:
    """A converted model keeps tagging while it is retrained: the new run lands in a new model."""
    extra = model.extra or {}
    n = 2
    taken = {m.name for m in registry.list_models()}
    while f"{model.name} v{n}" in taken:
        n += 1
    return _create(f"{model.name} v{n}", architecture=extra.get("train_architecture", model.architecture),
                   model_args=extra.get("model_args") or None, owner=model.owner)


# -- run folders ------------------------------------------------------------------------

def _checkpoints(model_id: str) -> Path:
    return paths().model_dir(model_id) / "checkpoints"


def runs_dir(model_id: str) -> Path:
    return paths().model_dir(model_id) / "pytorch" / "runs"


def reserve_run(model_id: str) -> int:
    """The next run number for a model (its checkpoint folder is created to claim it)."""
    base = _checkpoints(model_id)
    base.mkdir(parents=True, exist_ok=True)
    used = [int(p.name.removeprefix("run-")) for p in base.glob("run-*") if p.name.removeprefix("run-").isdigit()]
    if runs_dir(model_id).is_dir():
        used += [int(p.name) for p in runs_dir(model_id).iterdir() if p.name.isdigit()]
    n = max(used, default=0) + 1
    while True:
        try:
            (base / f"run-{n}").mkdir()
            return n
        except FileExistsError:
            n += 1


def checkpoint_path(model_id: str, run: int) -> Path:
    folder = _checkpoints(model_id) / f"run-{run}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "checkpoint.pt"


def save_run(model, *, model_id: str, run: int, timm_name: str, labels: list[str], image_size: int,
             mean, std, model_args: dict, multi_label: bool) -> Path:
    """Write the trained model in timm's folder format (what Convert reads): config.json with
    architecture, labels and preprocessing, and model.safetensors. Temp folder, then one rename."""
    from safetensors.torch import save_file

    target = runs_dir(model_id) / str(run)
    if target.exists():
        raise StateError(f"run {run} of {model_id!r} is already saved at {target}; retrain to make a new run")
    with staging_folder(target.parent, prefix=f".run-{run}-") as tmp:
        config = {
            "architecture": timm_name,
            "num_classes": len(labels),
            "num_features": getattr(model, "num_features", None),
            "label_names": list(labels),
            "multi_label": multi_label,
            "pretrained_cfg": {"input_size": [3, image_size, image_size], "interpolation": INTERPOLATION,
                               "crop_pct": CROP_PCT, "crop_mode": "center", "mean": list(mean), "std": list(std),
                               "num_classes": len(labels)},
            "model_args": dict(model_args or {}),
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        move_into_place(tmp, target)
    return target


def register_run(model_id: str, run: int, run_dir: Path, summary: dict) -> Model:
    """Point the model at its newest run: PyTorch / NotConverted, training "Trained"."""
    model = registry.get(model_id)
    extra = dict(model.extra or {})
    extra["current_run"] = run
    extra.setdefault("runs", {})[str(run)] = summary
    return registry.update(model_id, pytorch_path=str(run_dir), training=TRAINED, error=None, extra=extra)


def settle_after_abort(model_id: str, reason: str) -> None:
    """A run that stopped early: the model falls back to its last finished run, if any."""
    try:
        model = registry.get(model_id)
    except UnknownModelError:
        return
    if model.pytorch_path:
        registry.update(model_id, training=TRAINED)
    elif reason == "cancelled":
        registry.update(model_id, training=UNTRAINED)
    else:
        registry.update(model_id, training=FAILED, error=f"training failed: {reason}")


def archive_run(run_dir: str | Path, *, name: str, out_dir: Path) -> Path:
    """A zip of a finished run (config.json + model.safetensors) to download, in `out_dir`."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.safetensors").is_file():
        raise StateError(f"{run_dir} holds no trained model (was it removed?)")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.zip"
    with staged_file(target) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for file in ("config.json", "model.safetensors"):
            zf.write(run_dir / file, arcname=f"{name}/{file}")
    return target
