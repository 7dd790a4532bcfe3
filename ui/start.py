"""Start tab: what imgai is, what the demo model is and what each tab is for, with the demo's
preparation shown live where a newcomer waits. The page opens here until a model is ready to tag,
then on Tag."""

from __future__ import annotations

import gradio as gr

from imgai import registry
from imgai.access import public
from imgai.guide import DEMO_PREPARING, DEMO_READY, demo_status

from .page import Page

INTRO = """### Start here
**imgai** tags photos with image-classification models, converts models to ONNX, trains your own
tagger and publishes diffusion models. It works offline.

**The demo model** is EfficientNet-Lite0 trained on ImageNet (1,000 everyday classes: animals, food,
objects). It ships with imgai and is prepared on first start — converted to ONNX, validated and
enabled — so you can tag a photo within the first minute.

| tab | what it is for |
|---|---|
| **Tag** | upload photos{or_folder} and get their tags, as bars, a table, CSV and JSON |
| **Library** | {library} |
| **Browse** | find a classification model on the Hugging Face Hub{or_from_folder} |
| **Convert** | the models you have: convert to ONNX, make an INT8 copy that keeps FP32's answers, validate, enable, set the default, remove |
| **Train** | train a tagger on your own images (one folder per class) |
| **Quantize** | convert diffusion pipelines (Stable Diffusion, FLUX) to INT8 / FP16 / ONNX for publishing |
"""


def intro() -> str:
    """The Start tab's text; a public app's visitors are told of no folder on the server."""
    local = not public()
    return INTRO.format(or_folder=" (or name a folder)" if local else "",
                        or_from_folder=", or add one from a folder" if local else "",
                        library=("tag whole folders of photos, resuming where a run stopped; review the uncertain "
                                 "tags, search, export" if local else
                                 "the owner's photo folders on the server, tagged, reviewed and searched; not "
                                 "open to visitors"))


def opening_tab(last: str | None = None, ids=()) -> str:
    """The id of the tab to open: the one this browser was on before a reload (one of the page's
    tab `ids`); on a first visit Tag when a model is ready to tag, else Start."""
    if last and last in ids:
        return last
    ready = any(m.can_tag for m in registry.list_models())
    return "tag" if ready else "start"


def progress_html(fraction: float) -> str:
    return (f'<progress value="{max(0.0, min(1.0, fraction)):.3f}" max="1" '
            'style="width:100%;height:14px;accent-color:#f97316"></progress>')


def status() -> tuple[str, str, dict]:
    s = demo_status()
    bar = progress_html(s.progress) if s.state == DEMO_PREPARING else ""
    return bar, s.message, gr.update(interactive=s.state == DEMO_READY)


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    gr.Markdown(intro())
    with gr.Row(equal_height=True):
        with gr.Column(scale=3):
            bar = gr.HTML()
            message = gr.Markdown(elem_id="demo-status")
        go = gr.Button("Tag a photo with the demo →", variant="primary", interactive=False, scale=1, min_width=260)
    page.listen(status, None, [bar, message, go], api_name="demo_status", every_tab=True)
    go.click(lambda: page.show("tag"), None, [page.tabs, page.open], api_name=False)
