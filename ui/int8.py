"""The Convert tab's INT8 action: options (method, budget, minimum speed-up, force), calibration
photos uploaded from the browser, and a live panel of the search's attempts and its result."""

from __future__ import annotations

import gradio as gr

from imgai.classify.int8_search import DEFAULT_BUDGET_S, DEFAULT_MIN_SPEEDUP, QUANTIZE_METHODS
from imgai.classify.quantize import QuantizeOptions, submit_quantization
from imgai.presentation.int8 import auto_methods_text, gate_text, int8_panel

from .common import acting


@acting
def quantize_model(model_id: str, method: str, budget: float | None = None, min_speedup: float | None = None,
                   force: bool = False, photos: list | None = None, *, actor) -> str:
    options = QuantizeOptions(method=method, budget=float(budget or DEFAULT_BUDGET_S),
                              min_speedup=float(min_speedup or DEFAULT_MIN_SPEEDUP), force=bool(force))
    job = submit_quantization(model_id, options=options, actor=actor, uploads=photos or None)
    return (f"INT8 quantization of **{model_id}** queued as job `{job.id}`; its attempts appear below as they "
            "finish, and it is enabled only when it keeps FP32's answers.")


@acting
def panel(model_id: str | None, *, actor) -> str:
    return int8_panel(model_id, actor)


def build_options():
    """The INT8 options' inputs (in quantize_model's order after the model) and the live panel."""
    with gr.Row():
        method = gr.Radio(list(QUANTIZE_METHODS), value="auto", label="Method", scale=2,
                          info=f"auto: try {auto_methods_text()} calibration; dynamic: no calibration")
        budget = gr.Number(value=DEFAULT_BUDGET_S, label="Budget (seconds)", minimum=1, scale=1)
        min_speedup = gr.Number(value=DEFAULT_MIN_SPEEDUP, label="Minimum speed-up vs FP32", minimum=0.01, scale=1)
        force = gr.Checkbox(label=f"Enable even if it misses the gate ({gate_text()})",
                            value=False, scale=1)
    photos = gr.File(label="Calibration photos (at least 4, like the ones you tag; default: training data "
                           "or built-in photos)", file_count="multiple", file_types=["image"])
    result = gr.Markdown(elem_id="int8-panel")
    return [method, budget, min_speedup, force, photos], result
