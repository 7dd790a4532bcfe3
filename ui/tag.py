"""Tag tab: upload images (or, locally, name a folder), pick an enabled model, top-k and threshold;
see the tags per image as bars beside the gallery, in a table, and download them as CSV or JSON."""

from __future__ import annotations

import gradio as gr

from imgai import registry
from imgai.classify.report import tag_to_files
from imgai.classify.tag import CHARACTER_THRESHOLD, GENERAL_THRESHOLD, TagOptions
from imgai.access import public
from imgai.errors import ConfigError
from imgai.guide import demo_status

from .common import acting
from .page import Page


@acting
def taggable_models(current: str | None = None, *, actor):
    """The model choices (enabled, validated ONNX models), and a line when there is none yet."""
    models = [m for m in registry.list_models(actor=actor) if m.can_tag]
    ids = [m.id for m in models]
    value = current if current in ids else next((m.id for m in models if m.default), ids[0] if ids else None)
    note = "" if models else "⏳ " + demo_status().message + " The **Start** tab shows its progress."
    return gr.update(choices=[(f"{m.name} ({m.id})", m.id) for m in models], value=value), note


@acting
def tag_images(files, folder, model_id, top_k, threshold, general_threshold=GENERAL_THRESHOLD,
               character_threshold=CHARACTER_THRESHOLD, underscores_to_spaces=False, exclude_tags=None,
               progress=gr.Progress(), *, actor):
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    folders = [folder.strip()] if folder and folder.strip() else []
    if not paths and not folders:
        raise ConfigError("no images: upload some, or give a folder")

    def on_result(done, total, result):
        progress((done, total), desc="tagging", unit="images")

    report = tag_to_files(paths, folders=folders, model_id=model_id or None, actor=actor,
                          options=TagOptions(top_k=int(top_k) or None, threshold=float(threshold),
                                             general_threshold=float(general_threshold),
                                             character_threshold=float(character_threshold),
                                             underscores_to_spaces=bool(underscores_to_spaces),
                                             exclude_tags=exclude_tags or ""), on_result=on_result)
    gallery, rows, bars = [], [], []
    for r, file in zip(report.results, report.files):
        text = r.error and f"⚠️ {r.error}" or ", ".join(f"{t.label} {t.score:.2f}" for t in r.tags) or "(nothing above threshold)"
        if r.rating:
            text = f"[{r.rating.label} {r.rating.score:.2f}] {text}"
        if not r.error:
            gallery.append((file, r.path))
            bars.append({t.label: t.score for t in r.tags})
        rows.append([r.path, text])
    summary = f"Tagged {len(report.results) - report.failed} of {len(report.results)} images with **{report.model_id}**."
    if report.failed:
        summary += f" {report.failed} could not be read (see the table)."
    if len(gallery) > 1:
        summary += " Select an image to see its tags as bars."
    info = report.model_info or {}
    if info.get("preprocessing_assumed"):
        summary += (f"\n\n⚠️ Its preprocessing is **assumed** ({info['preprocessing']}, inferred from the ONNX graph): "
                    f"check the tags, then confirm or edit it (`imgai models preprocess {info['model_id']} --confirm`).")
    return (summary, gallery, bars[0] if bars else None, bars, rows,
            [str(report.csv_path), str(report.json_path)])


def show_bars(evt: gr.SelectData, bars: list):
    """The bars of the image selected in the gallery."""
    index = evt.index if isinstance(evt.index, int) else 0
    return bars[index] if bars and 0 <= index < len(bars) else gr.update()


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    gr.Markdown("Tag images with an enabled ONNX model: upload photos (or name a folder) and press **Tag**.")
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(label="Model", choices=[], allow_custom_value=True)  # the registry checks it
            waiting = gr.Markdown(elem_id="tag-waiting")
            files = gr.File(label="Images", file_count="multiple", file_types=["image"], type="filepath",
                            elem_id="tag-images")
            folder = gr.Textbox(label="…or a folder on this machine (Enter tags it)", placeholder="/path/to/photos",
                                visible=not public())
            with gr.Row():
                top_k = gr.Slider(0, 50, value=5, step=1, label="Top-k (0: all above threshold)")
                threshold = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Threshold (classifiers)")
            with gr.Accordion("Taggers with categories (WD-style)", open=False):
                with gr.Row():
                    general = gr.Slider(0.0, 1.0, value=GENERAL_THRESHOLD, step=0.01, label="General threshold")
                    character = gr.Slider(0.0, 1.0, value=CHARACTER_THRESHOLD, step=0.01, label="Character threshold")
                with gr.Row():
                    spaces = gr.Checkbox(label="Underscores → spaces (kaomoji kept)")
                    exclude = gr.Textbox(label="Exclude tags", placeholder="comma-separated")
            run = gr.Button("Tag", variant="primary")
        with gr.Column(scale=3):
            summary = gr.Markdown()
            with gr.Row():
                gallery = gr.Gallery(label="Tagged images", columns=3, height="auto", object_fit="contain",
                                     scale=3)
                label = gr.Label(label="Tags of the selected image", num_top_classes=20, scale=2,
                                 elem_id="tag-bars")
            table = gr.Dataframe(headers=["Image", "Tags"], interactive=False, wrap=True, label="Tags",
                                 elem_classes="imgai-table")
            downloads = gr.File(label="Download (CSV, JSON)", file_count="multiple", interactive=False)
    bars = gr.State([])
    page.listen(taggable_models, [model], [model, waiting], api_name="tag_models")
    inputs = [files, folder, model, top_k, threshold, general, character, spaces, exclude]
    outputs = [summary, gallery, label, bars, table, downloads]
    run.click(tag_images, inputs, outputs, api_name="tag", show_progress_on=[summary])
    folder.submit(tag_images, inputs, outputs, api_name=False, show_progress_on=[summary])
    gallery.select(show_bars, [bars], [label], api_name=False, show_progress="hidden")
