"""Browse tab: add a model by Hub id or (locally) from a folder. It enters as PyTorch / NotConverted,
or as ONNX when it is a ready-made ONNX model with a label file."""

from __future__ import annotations

import gradio as gr

from imgai.classify.architectures import FAMILIES
from imgai.access import public
from imgai.classify.preprocess import INTERPOLATIONS, MEAN_STD_PRESETS, RESIZE_MODES
from imgai.presentation.models import FROM_MODEL, added_words, preprocess_options
from imgai.sources import add_model as add_source

from .common import acting, locks
from .hub_browse import build_search
from .page import Page


@acting
def add_model(source: str, name: str, size=None, mean_std=FROM_MODEL, channel_order=FROM_MODEL, layout=FROM_MODEL,
              resize_mode=FROM_MODEL, interpolation=FROM_MODEL, *, actor) -> str:
    options = preprocess_options(size, mean_std=mean_std, channel_order=channel_order, layout=layout,
                                 resize_mode=resize_mode, interpolation=interpolation)
    model = add_source((source or "").strip(), name=(name or "").strip() or None, preprocess_options=options,
                       actor=actor)
    return added_words(model)


@acting
def access_state(*, actor):
    """Add model greyed, with the policy's reason, for a visitor who may not add one."""
    note, allowed = locks(actor, ("models.add",))
    return note, gr.update(interactive=allowed["models.add"])


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    build_search(demo, page)
    families = ", ".join(f.name for f in FAMILIES)
    gr.Markdown("### Add by Hub id" + ("" if public() else " or folder"))
    gr.Markdown(f"Add an image-classification model ({families}; transformers or timm format, or a "
                "ready-made ONNX model with a label file).")
    with gr.Row():
        source = gr.Textbox(label="Hub id or local folder" if not public() else "Hub id",
                            placeholder="org/name[@revision]" + ("" if public() else "  or  /path/to/model"),
                            scale=3)
        name = gr.Textbox(label="Name (optional)", scale=2)
        add = gr.Button("Add model", variant="primary", scale=1)
    with gr.Accordion("Preprocessing (ready-made ONNX models; saved as preprocess.json)", open=False):
        gr.Markdown("Leave a field on *from the model* to take it from the ONNX graph and the model's own "
                    "config; a model with neither gets ImageNet defaults, marked **assumed**.")
        with gr.Row():
            size = gr.Number(label="Size (px)", precision=0, minimum=0, value=None)
            mean_std = gr.Dropdown([FROM_MODEL, *MEAN_STD_PRESETS], value=FROM_MODEL, label="Mean/std")
            channel_order = gr.Dropdown([FROM_MODEL, "RGB", "BGR"], value=FROM_MODEL, label="Channels")
            layout = gr.Dropdown([FROM_MODEL, "NCHW", "NHWC"], value=FROM_MODEL, label="Layout")
            resize_mode = gr.Dropdown([FROM_MODEL, *RESIZE_MODES], value=FROM_MODEL, label="Resize")
            interpolation = gr.Dropdown([FROM_MODEL, *INTERPOLATIONS], value=FROM_MODEL, label="Interpolation")
    add_lock = gr.Markdown(elem_id="browse-add-lock")
    message = gr.Markdown()
    page.on_open(access_state, None, [add_lock, add], api_name=False)
    page.changed(add.click(add_model, [source, name, size, mean_std, channel_order, layout, resize_mode, interpolation],
                           [message], api_name="add_model", show_progress_on=[message]))
