"""Browse tab: add a model by Hub id or (locally) from a folder. It enters as PyTorch / NotConverted,
or as ONNX when it is a ready-made ONNX model with a label file."""

from __future__ import annotations

import gradio as gr

from imgai.classify.architectures import FAMILIES
from imgai.access import public
from imgai.errors import ConfigError
from imgai.sources import add_model as add_source

from .common import acting
from .hub_browse import build_search


@acting
def add_model(source: str, name: str, *, actor) -> str:
    source = (source or "").strip()
    if not source:
        raise ConfigError("give a Hub id like 'org/name' (optionally '@revision') or a local folder")
    model = add_source(source, name=(name or "").strip() or None, actor=actor)
    return (f"Added **{model.id}** as {model.type} / {model.conversion} "
            f"({model.library} {model.architecture}). Convert it in the **Convert** tab.")


def build(demo: gr.Blocks) -> None:
    build_search(demo)
    families = ", ".join(f.name for f in FAMILIES)
    gr.Markdown("### Add by Hub id or folder")
    gr.Markdown(f"Add an image-classification model ({families}; transformers or timm format, or a "
                "ready-made ONNX model with a label file).")
    with gr.Row():
        source = gr.Textbox(label="Hub id or local folder" if not public() else "Hub id",
                            placeholder="org/name[@revision]" + ("" if public() else "  or  /path/to/model"),
                            scale=3)
        name = gr.Textbox(label="Name (optional)", scale=2)
        add = gr.Button("Add model", variant="primary", scale=1)
    message = gr.Markdown()
    add.click(add_model, [source, name], [message], api_name="add_model")
