"""Quantize tab: pick key(s) or a source, a backend and a quantization; run it as a job with
per-stage progress; then inspect an output (files, quantization_info.json, card, original vs
converted images with their scores) and push it to the Hub."""

from __future__ import annotations

import gradio as gr

from imgai.access import public
from imgai.devices import QUANTIZE_DEVICES
from imgai.diffusion import BACKENDS, MODEL_KEYS, QUANTIZATIONS
from imgai.diffusion.job import submit
from imgai.diffusion.matrix import SUMMARY_HEADERS
from imgai.diffusion.outputs import list_outputs
from imgai.presentation.jobs import RUN_COLUMNS
from imgai.presentation.quantize import push as shown_push
from imgai.presentation.quantize import output_view, quantize_plan, quantize_request, quantize_screen, run_status

from .common import acting, clicked_row_id, guard, locks
from .hub_browse import build_login_row
from .page import Page

INTRO = ("Convert diffusion pipelines for publishing: **TorchAO INT8** or **FP16** PyTorch (safetensors), or "
         "**ONNX FP32** (Optimum). Each result is checked against the original on fixed prompts and seeds and "
         "gets a `quantization_info.json` and a model card. Keys: " +
         ", ".join(f"`{k}` ({m.repo_id})" for k, m in MODEL_KEYS.items()) + ".")


@acting
def preview(models, source, backend, quantization, force, check_steps, check_size, push, private,
            device="auto", *, actor):
    """What a run would do with each target, and Quantize greyed with the reason when it cannot start
    (the policy refuses, a bad field, or every target will fail)."""
    plan = quantize_plan(models, source, backend, quantization, force, check_steps, check_size, push, private,
                         device, actor=actor)
    return plan.text, gr.update(interactive=plan.can_start), plan.note


@acting
def start(models, source, backend, quantization, force, check_steps, check_size, push, private,
          device="auto", *, actor) -> tuple[str, str]:
    job = submit(quantize_request(models, source, backend, quantization, force, check_steps, check_size, push,
                                  private, device), actor=actor)
    return job.id, f"Queued job `{job.id}` ({job.subject})."


@acting
def refresh(job_id: str | None, output: str | None, *, actor):
    """Jobs, the selected job (restored after a reload: the running one, else the latest), its
    progress and per-target results, and the outputs list."""
    screen = quantize_screen(job_id, output, actor)
    return (screen.rows, screen.job_id, screen.status, screen.results,
            gr.update(choices=screen.outputs, value=screen.output))


@acting
def status(job_id: str | None, *, actor):
    return run_status(job_id, actor)


@guard
def show(name: str | None):
    """The output's file tree, quantization_info.json, card and image grid."""
    return output_view(name)


@acting
def push(name: str | None, org: str, private: bool, *, actor, oauth_token=None) -> str:
    """Push with the visitor's own sign-in on a Space, the local login otherwise."""
    return shown_push(name, org, private, visitor_token=oauth_token.token if oauth_token is not None else None, actor=actor)


@acting
def access_state(*, actor):
    """Push greyed, with the reason, for a visitor the policy refuses (Quantize: see preview)."""
    note, allowed = locks(actor, ("quantize.push",))
    return note, gr.update(interactive=allowed["quantize.push"])


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    gr.Markdown(INTRO)
    with gr.Row():
        models = gr.CheckboxGroup(list(MODEL_KEYS), value=["sd15"], label="Models")
        source = gr.Textbox(label="Source (optional)", scale=2,
                            placeholder="a Hub id (org/name) or a local diffusers folder — for one model")
    with gr.Row():
        backend = gr.Radio([*BACKENDS, "both"], value="pytorch", label="Backend")
        quantization = gr.Radio(list(QUANTIZATIONS), value="INT8", label="Quantization")
        force = gr.Checkbox(label="Force: redo up-to-date targets and skip the memory/disk refusal",
                            visible=not public())
        device = gr.Radio(list(QUANTIZE_DEVICES), value="auto", label="Device",
                          info="auto: CUDA when present (bfloat16), else the CPU")
    with gr.Accordion("Check and upload", open=False):
        with gr.Row():
            check_steps = gr.Number(label="Check steps (0: the key's default)", value=0, precision=0, minimum=0)
            check_size = gr.Textbox(label="Check size WxH (empty: the key's default)", placeholder="512x512")
            push_org = gr.Textbox(label="Push to Hub user/org after converting (optional)", visible=not public())
            private = gr.Checkbox(label="Private repos")
    form = [models, source, backend, quantization, force, check_steps, check_size, push_org, private, device]
    plan_md = gr.Markdown()
    run_btn = gr.Button("Quantize", variant="primary")
    lock_md = gr.Markdown(elem_id="quantize-lock")
    jobs_table = gr.Dataframe(headers=RUN_COLUMNS, interactive=False, wrap=True, label="Quantize jobs (live)",
                              elem_classes="imgai-table", elem_id="quantize-jobs")
    with gr.Row():
        job_id = gr.Textbox(label="Selected job", interactive=True, scale=1)
        progress = gr.Markdown(elem_id="quantize-progress")
    results = gr.Dataframe(headers=SUMMARY_HEADERS, interactive=False, wrap=True, label="Targets of the selected job",
                           elem_classes="imgai-table")

    gr.Markdown("### Outputs")
    with gr.Row():
        output = gr.Dropdown(label="Converted model", choices=list_outputs(), allow_custom_value=True, scale=2)
        push_to = gr.Textbox(label="Push to Hub user/org", placeholder="my-org → my-org/<output name>", scale=1)
        push_private = gr.Checkbox(label="Private", scale=0)
        push_btn = gr.Button("Push to Hub", scale=0)
    push_lock = gr.Markdown(elem_id="quantize-push-lock")
    build_login_row(demo, page, api_name="quantize_whoami")
    push_msg = gr.Markdown()
    scores = gr.Markdown()
    with gr.Tabs():
        with gr.Tab("Images"):
            grid = gr.Gallery(label="original vs converted", columns=2, height="auto", object_fit="contain",
                              elem_id="quantize-images")
        with gr.Tab("Card"):
            card = gr.Markdown()
        with gr.Tab("quantization_info.json"):
            info = gr.JSON()
        with gr.Tab("Files"):
            tree = gr.Code(label="Output folder", language=None)

    # one listener for the whole form, so the plans come back in the order of the edits (a listener
    # per field ran them side by side, and the plan of an older edit could land last)
    gr.on([page.on_open, *(field.change for field in form)], preview, form, [plan_md, run_btn, lock_md],
          api_name=False, show_progress="hidden", trigger_mode="always_last")
    page.on_open(access_state, None, [push_lock, push_btn], api_name=False)
    page.listen(refresh, [job_id, output], [jobs_table, job_id, progress, results, output], api_name="quantize_refresh")
    page.changed(run_btn.click(start, form, [job_id, progress], api_name="quantize", show_progress_on=[progress]))
    jobs_table.select(clicked_row_id, None, [job_id], api_name=False)
    job_id.change(status, [job_id], [progress, results], api_name="quantize_status", show_progress="hidden")
    output.change(show, [output], [tree, info, card, grid, scores], api_name="quantize_show")
    push_btn.click(push, [output, push_to, push_private], [push_msg], api_name="quantize_push",
                   show_progress_on=[push_msg])
