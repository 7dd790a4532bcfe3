"""The Train tab's forms read into imgai calls: a data pipeline's source, the training settings (as
gradio's fields give them), the fine-tune defaults a run starts with, and a job's settings loaded
back for Retrain. Each returns what the tab shows; a bad field is a ConfigError naming the fix."""

from __future__ import annotations

from dataclasses import dataclass

from .. import jobs, registry, train
from ..access import Actor
from ..errors import ConfigError, ImgaiError
from .train import architecture_rows, pipeline_rows, trainable_choices

KINDS = {"Image folder": "folder", "Zip upload": "zip", "Hub dataset (cached)": "hub",
         "Photo library (its tags)": "library", "Images with .txt captions": "captions"}
SERVER_KINDS = ("folder", "library", "captions")     # read folders on the server: not on a public app
AUGMENTATIONS = {"flip": "flip", "crop": "crop", "colour jitter": "color_jitter"}
DEFAULTS = {name: f.default for name, f in train.TrainConfig.__dataclass_fields__.items()}
FORM = ["loss", "label_smoothing", "epochs", "batch_size", "optimizer", "lr", "beta1", "beta2", "eps",
        "weight_decay", "device", "num_workers", "prefetch_factor", "seed", "image_size", "val_split", "pretrained",
        "precision", "flip", "crop"]
AUG_CHOICES = {"as the data pipeline": None, "on": True, "off": False}   # flip / crop: TrainConfig's None/True/False
INTEGERS = ("epochs", "batch_size", "num_workers", "prefetch_factor", "seed", "image_size")
ZERO_IS_NONE = ("prefetch_factor", "image_size", "val_split")   # gradio shows an empty number as 0


# -- what the tab lists ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainLists:
    """Everything the tab lists: architectures, data pipelines (rows and names), trainable models
    (choices) and the devices present."""
    architectures: list[list]
    pipelines: list[list]
    models: list[tuple[str, str]]
    names: list[str]
    devices: list[str]


def train_lists(actor: Actor | None) -> TrainLists:
    pipelines = train.list_pipelines(actor=actor)
    return TrainLists(architecture_rows(train.architectures_table()), pipeline_rows(pipelines),
                      trainable_choices(registry.list_models(actor=actor)), [p.name for p in pipelines],
                      train.available_devices())


def pipeline_lists(actor: Actor | None) -> tuple[list[list], list[str]]:
    """The data pipelines this visitor has: their rows and their names."""
    pipelines = train.list_pipelines(actor=actor)
    return pipeline_rows(pipelines), [p.name for p in pipelines]


def still_listed(value, choices) -> bool:
    """Whether a field keeps its value under new `choices` (values or (label, value) pairs): when it
    is still one of them, or empty (an action may be filling it at this very moment)."""
    return not value or value in [c[1] if isinstance(c, tuple) else c for c in choices]


# -- data pipelines --------------------------------------------------------------------------------

def add_data(kind: str, name: str, folder: str, upload, hub_id: str, val_split: float, image_size: int,
             augment: list[str] | None, *, actor: Actor | None) -> tuple[str, str]:
    """The data pipeline form (its fields in order) added as a pipeline: (what was made, its name)."""
    from ..library.training import TAG_SOURCES, add_pipeline_from_tags

    kind = KINDS.get(kind, kind)
    source = {"folder": (folder or "").strip(), "zip": upload if isinstance(upload, str) else getattr(upload, "name", None),
              "hub": (hub_id or "").strip(), "library": (folder or "").strip(), "captions": (folder or "").strip()}[kind]
    if not source:
        raise ConfigError(f"give the {'folder path' if kind in SERVER_KINDS else 'zip file' if kind == 'zip' else 'Hub dataset id'}")
    chosen = {AUGMENTATIONS[a]: True for a in augment or []}
    if kind in TAG_SOURCES:
        pipeline, images = add_pipeline_from_tags(kind, name or "", source, val_split=float(val_split),
                                                  image_size=int(image_size), actor=actor, **chosen)
        return (f"Data pipeline **{pipeline.name}**: {images} images, "
                f"{'multi-label (trains with bce)' if pipeline.multi_label else 'single-label'}."), pipeline.name
    pipeline = train.add_pipeline(name or "", source, kind=kind, val_split=float(val_split),
                                  image_size=int(image_size), actor=actor, **chosen)
    return f"Data pipeline **{pipeline.name}** reads `{pipeline.root}`.", pipeline.name


# -- the training form -----------------------------------------------------------------------------

def aug_choice(value) -> str:
    """A flip / crop setting (None, True, False) as the form's choice."""
    return next(k for k, v in AUG_CHOICES.items() if v is value)


def form_settings(values) -> dict:
    """The training form's fields (FORM, in order) as TrainConfig settings: whole numbers as int, an
    empty number (0 in gradio) as None for the fields where that means "off" / "the pipeline's"."""
    settings = dict(zip(FORM, values))
    for key in INTEGERS:
        if isinstance(settings[key], float) and settings[key].is_integer():
            settings[key] = int(settings[key])
    for key in ZERO_IS_NONE:
        if settings[key] == 0:
            settings[key] = None
    for key in ("flip", "crop"):
        settings[key] = AUG_CHOICES.get(settings[key], settings[key])
    return settings


def start_training(model_id: str | None, data: str | None, values, retrain_from: str | None, *,
                   actor: Actor | None) -> jobs.Job:
    """The form's run: a retrain of job `retrain_from` when given, else a fresh run of `model_id`;
    only named data pipelines (never an arbitrary server path)."""
    settings = form_settings(values)
    if not data:
        raise ConfigError("pick a Data Source (make one under Data pipelines first)")
    pipeline = train.get_pipeline(data)
    if retrain_from:
        return train.retrain(retrain_from.strip(), data=pipeline, actor=actor,
                             **{k: v for k, v in settings.items() if v is not None})
    if not model_id:
        raise ConfigError("pick a model to train (Convert To Model makes one)")
    return train.start(model_id, data=pipeline, config=train.TrainConfig(**settings), actor=actor)


def weights_note(model_id: str | None) -> str:
    """Where a model's run starts from ('' for no model, or one that cannot be found)."""
    from ..train.architectures import starting_weights

    if not model_id:
        return ""
    try:
        model = train.resolve_model(model_id)
    except ImgaiError:
        return ""
    arch = train.get_architecture(model.extra.get("train_architecture") or model.architecture)
    weights = starting_weights(arch, model_args=model.extra.get("model_args"))
    return ("Starts from " if weights.pretrained else "⚠️ ") + weights.describe()


@dataclass(frozen=True)
class FinetuneForm:
    """Optimizer, learning rate, flip and crop as a run starts (None: leave the fields as they
    are), and the note on its starting weights and defaults."""
    values: tuple | None
    note: str


def finetune_form(model_id: str | None, data: str | None, pretrained: bool) -> FinetuneForm:
    """The fine-tune defaults of this model on this data (all changeable) when it starts from
    ImageNet weights, and the note."""
    if not model_id:
        return FinetuneForm(None, "")
    try:
        defaults = train.finetune_defaults(model_id, train.get_pipeline(data) if data else None,
                                           pretrained=bool(pretrained))
    except ImgaiError:
        return FinetuneForm(None, weights_note(model_id))
    s = defaults.settings
    return FinetuneForm((s.get("optimizer", DEFAULTS["optimizer"]), s.get("lr", DEFAULTS["lr"]),
                         aug_choice(s.get("flip")), aug_choice(s.get("crop"))),
                        f"{weights_note(model_id)}\n\nDefaults: {defaults.note}.")


@dataclass(frozen=True)
class RetrainForm:
    """A job's settings for the form: its model, its data, the FORM fields in order, and the note."""
    model: str
    data: str
    values: list
    note: str


def retrain_form(job_id: str | None, *, actor: Actor | None) -> RetrainForm:
    """The settings of job `job_id`, to fill the training form for Retrain."""
    if not job_id:
        raise ConfigError("select a job to retrain")
    job = jobs.get(job_id, actor=actor)
    values = {"model": job.subject, "data": job.params["data"]["name"], **job.params["config"]}
    form = [aug_choice(values.get(k)) if k in ("flip", "crop") else values.get(k, DEFAULTS[k]) for k in FORM]
    return RetrainForm(values["model"], values["data"], form,
                       f"Settings of job `{job_id}` loaded: edit them above and press **Train** for a new run.")
