"""Train tab: architectures → Convert To Model → data pipelines (with preview) → training setup →
Train → Queued / In Progress / Complete / Failed with live curves; cancel, resume, retrain,
per-class accuracy, confusion matrix and the trained model's download."""

from __future__ import annotations

import gradio as gr

from imgai import registry, train
from imgai.access import public
from imgai.devices import PRECISIONS
from imgai.errors import ConfigError
from imgai.presentation import train_form
from imgai.presentation.train import (ARCH_COLUMNS, ARCH_WIDTHS, FAILED_COLUMNS, JOB_COLUMNS, PIPELINE_COLUMNS,
                                      TABLES, default_architecture, report_markdown, trainable_choices,
                                      training_screen)
from imgai.presentation.train_form import (AUG_CHOICES, AUGMENTATIONS, DEFAULTS, KINDS, SERVER_KINDS, pipeline_lists,
                                           retrain_form, still_listed, train_lists)
from imgai.train.config import LOSSES, OPTIMIZERS
from imgai.train.images import inspect_pipeline

from .common import acting, clicked_row_id, locks
from .page import Page


def _keep(value, choices):
    """New choices; the value only when it no longer exists (imgai.presentation.train_form.still_listed)."""
    return gr.update(choices=choices) if still_listed(value, choices) else gr.update(choices=choices, value=None)


@acting
def load_tab(model_id: str | None = None, data: str | None = None, picked: str | None = None, *, actor):
    """Everything the tab lists, rebuilt from the registry and the pipelines (on load, and whenever
    the page's revision moves: a model trained or added elsewhere shows here at once)."""
    lists = train_lists(actor)
    return (lists.architectures, lists.pipelines, _keep(model_id, lists.models), _keep(data, lists.names),
            _keep(picked, lists.names), gr.update(choices=lists.devices))


def starting_architecture():
    """The architecture a newcomer starts from: one whose ImageNet weights are at hand (offline, the
    demo's EfficientNet-Lite0), not one that would train from random weights."""
    return gr.update(value=default_architecture(train.architectures_table()))


@acting
def create_model(architecture: str, name: str, *, actor):
    model = train.create_model(name or "", architecture=architecture, actor=actor)
    return (f"Created **{model.name}** (`{model.id}`, {model.architecture}): untrained. Starting weights: "
            f"{model.extra['weights']['message']}. Pick a Data Source below and press **Train**; once trained, "
            "it can be converted and used to tag.",
            gr.update(choices=trainable_choices(registry.list_models(actor=actor)), value=model.id))


@acting
def add_data(kind: str, name: str, folder: str, upload, hub_id: str, val_split: float, image_size: int,
             augment: list[str], *, actor):
    return train_form.add_data(kind, name, folder, upload, hub_id, val_split, image_size, augment, actor=actor)


@acting
def preview_data(name: str, *, actor):
    if not name:
        raise ConfigError("pick a data pipeline to preview")
    _, report, samples = inspect_pipeline(name, count=8, actor=actor)
    return [(image, label) for image, label in samples], report_markdown(report)


@acting
def remove_data(name: str, *, actor):
    if not name:
        raise ConfigError("pick the data pipeline to delete in **Preview pipeline**")
    train.remove_pipeline(name, actor=actor)
    return f"Data pipeline **{name}** deleted (the images it read are untouched; an unpacked zip is removed)."


def source_fields(kind: str):
    """Show only the input of the chosen source."""
    kind = KINDS.get(kind, kind)
    return (gr.update(visible=kind in SERVER_KINDS and not public()), gr.update(visible=kind == "zip"),
            gr.update(visible=kind == "hub"))


@acting
def pipelines_changed(name: str | None, *, actor):
    rows, names = pipeline_lists(actor)
    return (rows, gr.update(choices=names, value=name if name in names else None),
            gr.update(choices=names, value=name if name in names else None))


def finetune_form(model_id: str | None, data: str | None, pretrained: bool):
    """Optimizer, learning rate, flip and crop as a run of this model on this data starts: the
    fine-tune defaults when it starts from ImageNet weights (all changeable), and the note."""
    form = train_form.finetune_form(model_id, data, pretrained)
    return (*(form.values or (gr.update(),) * 4), form.note)


@acting
def start_training(model_id, data, loss, label_smoothing, epochs, batch_size, optimizer, lr, beta1, beta2, eps,
                   weight_decay, device, num_workers, prefetch_factor, seed, image_size, val_split, pretrained,
                   precision, flip, crop, retrain_from, *, actor):
    job = train_form.start_training(model_id, data, [loss, label_smoothing, epochs, batch_size, optimizer, lr, beta1,
                                                     beta2, eps, weight_decay, device, num_workers, prefetch_factor,
                                                     seed, image_size, val_split, pretrained, precision, flip, crop],
                                    retrain_from, actor=actor)
    return f"Training job `{job.id}` for **{job.subject}** is {job.state}.", "", job.id


# the buttons that make something new (the selected job's: imgai.presentation.train.JOB_ACTIONS)
CREATES = ("train.create", "data.create", "data.remove", "train.start")


@acting
def access_state(*, actor):
    """The buttons that make something greyed, with the reason, for a visitor the policy refuses."""
    note, allowed = locks(actor, CREATES)
    return note, *(gr.update(interactive=allowed[action]) for action in CREATES)


@acting
def refresh(job_id: str | None, plot_key, *, actor):
    s = training_screen(job_id, plot_key, actor=actor)
    return (*s.tables.values(), s.job_id, s.detail.text, *(s.plots or (gr.update(), gr.update())),
            s.detail.per_class, s.detail.confusion, s.plot_key, *(gr.update(interactive=b) for b in s.buttons))


@acting
def cancel_job(job_id: str, *, actor) -> str:
    job = train.cancel(job_id, actor=actor)
    return f"Job `{job.id}` {job.state}."


@acting
def resume_job(job_id: str, *, actor):
    job = train.resume(job_id, actor=actor)
    return f"Resuming as job `{job.id}` from the last checkpoint of `{job_id}`.", job.id


@acting
def load_retrain(job_id: str, *, actor):
    form = retrain_form(job_id, actor=actor)
    return gr.update(value=form.model), gr.update(value=form.data), *form.values, job_id, form.note


@acting
def download_model(job_id: str, *, actor):
    return str(train.download(job_id, actor=actor))


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    gr.Markdown("Train a tagger on your own images: **1.** create a model from an architecture, **2.** describe "
                "your images once as a data pipeline (one folder per class), **3.** set up training and press "
                "**Train**. The trained model appears in the **Convert** tab; convert it and it tags.")
    lock_md = gr.Markdown(elem_id="train-lock")
    with gr.Accordion("1. Architectures", open=True):
        arch_table = gr.Dataframe(headers=ARCH_COLUMNS, interactive=False, label="Trainable architectures",
                                  wrap=True, column_widths=ARCH_WIDTHS, elem_classes="imgai-table")
        with gr.Row():
            arch = gr.Dropdown(list(train.ARCHITECTURES), value=None, label="Architecture",
                               elem_id="train-architecture")   # on load: one whose weights are at hand
            name = gr.Textbox(label="Model name", placeholder="my-tagger")
            create = gr.Button("Create model (untrained)", variant="primary")
        create_msg = gr.Markdown()
    with gr.Accordion("2. Data pipelines", open=False):
        with gr.Row():
            kinds = list(KINDS) if not public() else [k for k, v in KINDS.items() if v not in SERVER_KINDS]
            kind = gr.Radio(kinds, label="Source", value=kinds[0])
            data_name = gr.Textbox(label="Pipeline name", placeholder="my-photos")
        with gr.Row():
            folder = gr.Textbox(label="Folder (one subfolder per class)", placeholder="/path/to/images",
                                visible=not public())
            upload = gr.File(label="Zip (one folder per class inside)", file_types=[".zip"], type="filepath",
                             visible=public())
            hub_id = gr.Textbox(label="Hub dataset id (imagefolder, from the local cache)", placeholder="org/dataset",
                                visible=False)
        with gr.Row():
            val_split = gr.Slider(0.0, 0.5, value=0.2, step=0.05, label="Validation split")
            image_size = gr.Number(224, precision=0, label="Image size")
            augment = gr.CheckboxGroup(list(AUGMENTATIONS), label="Augmentations (none by default)")
        add = gr.Button("Create data pipeline", variant="primary")
        data_msg = gr.Markdown()
        pipelines = gr.Dataframe(headers=PIPELINE_COLUMNS, interactive=False, label="Data pipelines",
                                 wrap=True, elem_classes="imgai-table")
        with gr.Row():
            preview_pick = gr.Dropdown([], label="Preview pipeline", allow_custom_value=True)
            preview = gr.Button("Preview and check")
            remove = gr.Button("Delete pipeline", variant="stop")
        gallery = gr.Gallery(label="Transformed samples", columns=8, height="auto")
        report = gr.Markdown()
    with gr.Accordion("3. Training setup", open=True):
        with gr.Row():
            model = gr.Dropdown([], label="Model", allow_custom_value=True)
            data = gr.Dropdown([], label="Data Source", allow_custom_value=True)
            retrain_from = gr.Textbox(label="Retrain from job (empty: a fresh run)", placeholder="job id")
        note = gr.Markdown()
        with gr.Row():
            loss = gr.Dropdown(list(LOSSES), value=DEFAULTS["loss"], label="Loss",
                               info="bce: multi-label (an image filed under several class folders)")
            smoothing = gr.Number(DEFAULTS["label_smoothing"], label="Label smoothing", step=0.05, minimum=0)
            epochs = gr.Number(DEFAULTS["epochs"], precision=0, label="Epochs", minimum=1)
            batch = gr.Number(DEFAULTS["batch_size"], precision=0, label="Batch Size", minimum=1)
            optimizer = gr.Dropdown(list(OPTIMIZERS), value=DEFAULTS["optimizer"], label="Optimizer")
            flip = gr.Dropdown(list(AUG_CHOICES), value="as the data pipeline", label="Horizontal flip")
            crop = gr.Dropdown(list(AUG_CHOICES), value="as the data pipeline", label="Random resized crop (0.6–1)")
        with gr.Accordion("Optimizer: edit", open=False):
            with gr.Row():
                lr = gr.Number(DEFAULTS["lr"], label="Learning Rate", step=0.0001, minimum=0)
                beta1 = gr.Number(DEFAULTS["beta1"], label="Beta 1", step=0.001, minimum=0)
                beta2 = gr.Number(DEFAULTS["beta2"], label="Beta 2", step=0.0001, minimum=0)
                eps = gr.Number(DEFAULTS["eps"], label="Epsilon", step=1e-9, minimum=0)
                decay = gr.Number(DEFAULTS["weight_decay"], label="Weight Decay", step=0.001, minimum=0)
        with gr.Accordion("Advanced Settings", open=False, elem_id="train-advanced"):
            with gr.Row():   # two rows of four and a full-width box: none is squeezed to a sliver
                device = gr.Dropdown(["auto", "cpu"], value="auto", label="Device", info="only those present")
                workers = gr.Number(0, precision=0, label="Number of workers", minimum=0)
                prefetch = gr.Number(None, precision=0, label="Prefetch factor",
                                     info="only valid with workers > 0; empty or 0: off")
                seed = gr.Number(0, precision=0, label="Seed")
            with gr.Row():
                size = gr.Number(None, precision=0, label="Image size", info="empty or 0: the data pipeline's")
                split = gr.Number(None, label="Validation split", info="empty or 0: the data pipeline's")
                precision = gr.Dropdown(list(PRECISIONS), value="auto", label="Precision", scale=2,
                                        info="auto: bf16 on GPUs with it, fp16 + gradient scaler on older ones, "
                                             "fp32 on a CPU")
            pretrained = gr.Checkbox(True, label="Start from local ImageNet weights when present",
                                     elem_id="train-pretrained")
        start = gr.Button("Train", variant="primary")
        start_msg = gr.Markdown()
    with gr.Accordion("4. Training", open=True):
        tables = {}
        for title in TABLES:
            headers = FAILED_COLUMNS if title == "Failed" else JOB_COLUMNS
            tables[title] = gr.Dataframe(headers=headers, interactive=False, label=title, wrap=True,
                                         elem_classes="imgai-table")
        with gr.Row():
            job = gr.Textbox(label="Selected job", scale=2)
            cancel = gr.Button("Cancel", variant="stop")
            resume = gr.Button("Resume")
            retrain = gr.Button("Retrain")
            download = gr.Button("Download trained model")
        with gr.Row():
            job_msg = gr.Markdown()
            model_file = gr.File(label="Trained model (config.json + model.safetensors)", interactive=False,
                                 visible=False)   # shown once there is something to download
        detail = gr.Markdown()
        with gr.Row():
            loss_plot = gr.HTML(elem_id="loss-curve")
            acc_plot = gr.HTML(elem_id="accuracy-curve")
        with gr.Row():
            per_class = gr.Dataframe(headers=["Class", "Accuracy"], interactive=False, label="Per-class accuracy")
            confusion = gr.Dataframe(interactive=False, label="Confusion matrix (validation)")

    form = [loss, smoothing, epochs, batch, optimizer, lr, beta1, beta2, eps, decay, device, workers, prefetch,
            seed, size, split, pretrained, precision, flip, crop]
    plot_key = gr.State([])
    live = [*tables.values(), job, detail, loss_plot, acc_plot, per_class, confusion, plot_key,
            cancel, resume, retrain, download]

    page.listen(load_tab, [model, data, preview_pick], [arch_table, pipelines, model, data, preview_pick, device],
                api_name="train_load")
    page.listen(refresh, [job, plot_key], live, also=[job.change], api_name="train_refresh")
    page.on_open(access_state, None, [lock_md, create, add, remove, start], api_name=False)
    page.on_open(starting_architecture, None, [arch], api_name=False)
    arch_table.select(clicked_row_id, None, [arch], api_name=False)
    page.changed(create.click(create_model, [arch, name], [create_msg, model], api_name="train_create",
                              show_progress_on=[create_msg]))
    # one listener for the three fields: the defaults of the last choice are the ones that stay
    gr.on([model.change, data.change, pretrained.change], finetune_form, [model, data, pretrained],
          [optimizer, lr, flip, crop, note], api_name="train_defaults", show_progress="hidden",
          trigger_mode="always_last")
    kind.change(source_fields, [kind], [folder, upload, hub_id], api_name=False, show_progress="hidden")
    added = add.click(add_data, [kind, data_name, folder, upload, hub_id, val_split, image_size, augment],
                      [data_msg, preview_pick], api_name="train_data_add", show_progress_on=[data_msg])
    added.success(pipelines_changed, [preview_pick], [pipelines, data, preview_pick], api_name=False).success(
        preview_data, [preview_pick], [gallery, report], api_name=False)
    page.changed(added)
    preview.click(preview_data, [preview_pick], [gallery, report], api_name="train_data_preview",
                  show_progress_on=[report])
    page.changed(remove.click(remove_data, [preview_pick], [data_msg], api_name="train_data_remove",
                              show_progress_on=[data_msg]))
    page.changed(start.click(start_training, [model, data, *form, retrain_from], [start_msg, retrain_from, job],
                             api_name="train_start", show_progress_on=[start_msg]))
    for table in tables.values():
        table.select(clicked_row_id, None, [job], api_name=False)
    page.changed(cancel.click(cancel_job, [job], [job_msg], api_name="train_cancel", show_progress_on=[job_msg]))
    page.changed(resume.click(resume_job, [job], [job_msg, job], api_name="train_resume", show_progress_on=[job_msg]))
    retrain.click(load_retrain, [job], [model, data, *form, retrain_from, job_msg], api_name="train_retrain",
                  show_progress_on=[job_msg])
    download.click(download_model, [job], [model_file], api_name="train_download", show_progress_on=[job_msg]).success(
        lambda: gr.update(visible=True), None, [model_file], api_name=False)
