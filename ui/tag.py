"""Tag tab: upload images (or, locally, name a folder), pick an enabled model, top-k and threshold;
see the tags per image and download them as CSV or JSON."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from imgai import registry
from imgai.classify.report import tag_to_files
from imgai.classify.tag import CHARACTER_THRESHOLD, GENERAL_THRESHOLD, TagOptions
from imgai.access import public
from imgai.errors import ConfigError

from .common import acting


@acting
def taggable_models(current: str | None = None, known: list | None = None, *, actor):
    """The model choices, updated only when the set of taggable models changed."""
    models = [m for m in registry.list_models(actor=actor) if m.can_tag]
    ids = [m.id for m in models]
    if known is not None and ids == known and current in ids:
        return gr.update(), known
    default = current if current in ids else next((m.id for m in models if m.default), ids[0] if ids else None)
    return gr.update(choices=[(f"{m.name} ({m.id})", m.id) for m in models], value=default), ids


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
    gallery, rows = [], []
    for r in report.results:
        text = r.error and f"⚠️ {r.error}" or ", ".join(f"{t.label} {t.score:.2f}" for t in r.tags) or "(nothing above threshold)"
        if r.rating:
            text = f"[{r.rating.label} {r.rating.score:.2f}] {text}"
        if not r.error:
            gallery.append((r.path, text))
        rows.append([Path(r.path).name, text])
    summary = f"Tagged {len(report.results) - report.failed} of {len(report.results)} images with **{report.model_id}**."
    if report.failed:
        summary += f" {report.failed} could not be read (see the table)."
    info = report.model_info or {}
    if info.get("preprocessing_assumed"):
        summary += (f"\n\n⚠️ Its preprocessing is **assumed** ({info['preprocessing']}, inferred from the ONNX graph): "
                    f"check the tags, then confirm or edit it (`imgai models preprocess {info['model_id']} --confirm`).")
    return summary, gallery, rows, [str(report.csv_path), str(report.json_path)]


def build(demo: gr.Blocks) -> None:
    gr.Markdown("Tag images with an enabled ONNX model. Convert the demo model in the **Convert** tab first "
                "if the model list is empty.")
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(label="Model", choices=[], allow_custom_value=True)  # the registry checks it
            files = gr.File(label="Images", file_count="multiple", file_types=["image"], type="filepath",
                            elem_id="tag-images")
            folder = gr.Textbox(label="…or a folder on this machine", placeholder="/path/to/photos",
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
        with gr.Column(scale=2):
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Tagged images", columns=3, height="auto", object_fit="contain")
            table = gr.Dataframe(headers=["Image", "Tags"], interactive=False, wrap=True, label="Tags")
            downloads = gr.File(label="Download (CSV, JSON)", file_count="multiple", interactive=False)
    known = gr.State(None)
    demo.load(taggable_models, [model, known], [model, known], api_name="tag_models")
    gr.Timer(3).tick(taggable_models, [model, known], [model, known], api_name=False, show_progress="hidden",
                     queue=False)
    run.click(tag_images, [files, folder, model, top_k, threshold, general, character, spaces, exclude],
              [summary, gallery, table, downloads],
              api_name="tag")
