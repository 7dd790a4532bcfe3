"""Tag tab: upload images (or, locally, name a folder), pick an enabled model, top-k and threshold;
see the tags per image as bars beside the gallery, in a table, and download them as CSV or JSON."""

from __future__ import annotations

import gradio as gr

from imgai.classify.tag import CHARACTER_THRESHOLD, GENERAL_THRESHOLD
from imgai.access import public
from imgai.presentation.tag import (NO_IMAGE, TAG_COLUMNS, bars_title, fresh_upload, image_at, image_of_row,
                                    tag_form, tag_readiness)

from .common import acting
from .page import Page


@acting
def taggable_models(current: str | None = None, *, actor):
    """The model choices, and Tag greyed with what the visitor waits for while no model is ready."""
    ready = tag_readiness(current, actor)
    return (gr.update(choices=ready.choices, value=ready.value), ready.note,
            gr.update(interactive=ready.ready, value="Tag" if ready.ready else "Tag (no model ready yet)"))


@acting
def tag_images(files, folder, model_id, top_k, threshold, general_threshold=GENERAL_THRESHOLD,
               character_threshold=CHARACTER_THRESHOLD, underscores_to_spaces=False, exclude_tags=None,
               progress=gr.Progress(), *, actor):
    """Tag the form's images (imgai.presentation.tag.tag_form); the gallery's selection starts again on
    the first image, and the bars say that they are its."""
    screen = tag_form(files, folder, model_id, top_k, threshold, general_threshold, character_threshold,
                      underscores_to_spaces, exclude_tags, actor=actor,
                      on_progress=lambda done, total: progress((done, total), desc="tagging", unit="images"))
    return (screen.summary, gr.Gallery(value=[(i.file, i.name) for i in screen.images], selected_index=0),
            _bars(image_at(screen.images, 0)), screen.images, screen.rows, screen.downloads, screen.tagged)


def _bars(image):
    return gr.Label(value=image.bars if image else None, label=bars_title(image))


def show_bars(evt: gr.SelectData, images: list):
    """The bars of the image selected in the gallery, named."""
    return _bars(image_at(images, evt.index)) if images else gr.update()


def show_row(evt: gr.SelectData, images: list):
    """A click on a table row selects its image in the gallery and shows its bars."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    index = image_of_row(images or [], row)
    if index is None:
        return gr.update(), gr.update()
    return gr.Gallery(selected_index=index), _bars(images[index])


def new_upload(files, tagged, add_to):
    """Each upload starts a fresh set (the images already tagged leave the field) unless "add to" is ticked."""
    return gr.update() if add_to else gr.update(value=fresh_upload(files, tagged))


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    gr.Markdown("Tag images with an enabled ONNX model: upload photos" + ("" if public() else " (or name a folder)")
                + " and press **Tag**.")
    with gr.Row():
        with gr.Column(scale=1, min_width=340):
            model = gr.Dropdown(label="Model", choices=[], allow_custom_value=True)  # the registry checks it
            waiting = gr.Markdown(elem_id="tag-waiting")
            files = gr.File(label="Images", file_count="multiple", file_types=["image"], type="filepath",
                            elem_id="tag-images")
            add_to = gr.Checkbox(False, label="Add new uploads to the images already tagged",
                                 info="off: each upload starts a fresh set", elem_id="tag-add-to")
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
            run = gr.Button("Tag", variant="primary", interactive=False, elem_id="tag-run")
        with gr.Column(scale=3):
            summary = gr.Markdown()
            with gr.Row():
                gallery = gr.Gallery(label="Tagged images", columns=3, height="auto", object_fit="contain",
                                     scale=3, elem_id="tag-gallery")
                label = gr.Label(label=NO_IMAGE, num_top_classes=20, scale=2, elem_id="tag-bars")
            table = gr.Dataframe(headers=TAG_COLUMNS, interactive=False, wrap=True, label="Tags (click a row)",
                                 column_widths=["30%", "70%"], elem_classes="imgai-table", elem_id="tag-table")
            downloads = gr.File(label="Download (CSV, JSON)", file_count="multiple", interactive=False)
    images = gr.State([])      # the run's images, in gallery order: name, file, bars, table row
    tagged = gr.State([])      # the uploaded files of the last run (a new upload starts without them)
    page.listen(taggable_models, [model], [model, waiting, run], api_name="tag_models")
    inputs = [files, folder, model, top_k, threshold, general, character, spaces, exclude]
    outputs = [summary, gallery, label, images, table, downloads, tagged]
    run.click(tag_images, inputs, outputs, api_name="tag", show_progress_on=[summary])
    folder.submit(tag_images, inputs, outputs, api_name=False, show_progress_on=[summary])
    files.upload(new_upload, [files, tagged, add_to], [files], api_name=False, show_progress="hidden")
    gallery.select(show_bars, [images], [label], api_name=False, show_progress="hidden")
    table.select(show_row, [images], [gallery, label], api_name=False, show_progress="hidden")
