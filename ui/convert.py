"""Convert tab: the models table, Convert to ONNX / INT8 / Validate / Enable / Disable / Set default /
Remove (after a confirmation that says what it deletes), Restore the demo, and live progress of
conversion and INT8 jobs. The lists rebuild whenever the page's revision moves (ui/page.py)."""

from __future__ import annotations

import functools

import gradio as gr

from imgai import registry
from imgai.classify.convert import submit_conversion
from imgai.classify.validate import validate
from imgai.demo import MODEL_ID as DEMO_ID, restore_demo
from imgai.presentation.jobs import JOB_COLUMNS
from imgai.presentation.models import (ACTIONS, MODEL_COLUMNS, ModelActions, convert_screen, enabled_message,
                                       selected_actions)
from imgai.removal import plan_removal, remove_model as remove_confirmed

from . import int8
from .common import acting, clicked_row_id
from .push import build_push
from .page import Page


def buttons(actions: ModelActions) -> tuple:
    """The text beside the model buttons, then each button greyed or not, in ACTIONS' order."""
    return (actions.detail, *(gr.update(interactive=actions.allowed[action]) for action in ACTIONS))


@acting
def action_state(model_id: str | None, *, actor):
    """Which buttons make sense for the selected model (one this visitor may see), and the one step
    that gets it tagging."""
    return buttons(selected_actions(model_id, actor, conversion_hint=conversion_unavailable()))


@functools.lru_cache(maxsize=1)
def conversion_unavailable() -> str:
    """Why conversion cannot run in this installation ('' when it can)."""
    from imgai.doctor import check_environment

    return check_environment().convert_hint


@acting
def refresh(model_id: str | None, *, actor):
    screen = convert_screen(model_id, actor, conversion_hint=conversion_unavailable())
    return (screen.rows, gr.update(choices=screen.ids, value=screen.selected), screen.jobs,
            gr.update(visible=screen.restore_offered), *buttons(screen.actions))


@acting
def convert_model(model_id: str, *, actor) -> str:
    job = submit_conversion(model_id, actor=actor)
    return (f"Conversion of **{model_id}** queued as job `{job.id}`; it ends validated and enabled, and the "
            "model appears in the **Tag** tab.")


@acting
def validate_model(model_id: str, *, actor) -> str:
    return f"Validation of **{model_id}**: {validate(model_id, actor=actor).summary()}"


@acting
def enable_model(model_id: str, force: bool = False, *, actor) -> str:
    return enabled_message(registry.set_enabled(model_id, True, force=bool(force), actor=actor))


@acting
def disable_model(model_id: str, *, actor) -> str:
    return enabled_message(registry.set_enabled(model_id, False, actor=actor))


@acting
def default_model(model_id: str, *, actor) -> str:
    registry.set_default(model_id, actor=actor)
    return f"**{model_id}** is now the default model."


@acting
def ask_remove(model_id: str, *, actor):
    """Say what Remove deletes, and show the confirm buttons."""
    plan = plan_removal(model_id, actor=actor)
    return plan.summary(), model_id, gr.update(visible=True)


@acting
def remove_model(model_id: str, confirmed: str | None, *, actor) -> tuple:
    plan = remove_confirmed(model_id, confirm=confirmed or "", actor=actor)
    note = " Bring it back with **Restore the demo model**." if plan.model_id == DEMO_ID else ""
    return f"**{model_id}** removed with its files.{note}", None, gr.update(visible=False)


def keep_model():
    return "Nothing removed.", None, gr.update(visible=False)


@acting
def restore(*, actor) -> str:
    job = restore_demo(actor=actor)
    return ("The demo model is ready." if job is None else
            f"Preparing the demo model again (job `{job.id}`): it is converted, validated and enabled.")


def remember_selection(model_id: str | None, memory: dict | None) -> dict:
    """The browser's page memory with the Convert tab's selection in it (a reload restores it)."""
    return {**(memory or {}), "convert": model_id or ""}


def pick_row(memory: dict | None, evt: gr.SelectData):
    """A click on a models row: selects that model and remembers it in the same answer, so the browser
    keeps it the moment the selection shows (a reload straight after the click used to find the
    memory not yet written, in a second event, and fell back to the default model)."""
    model_id = clicked_row_id(evt)
    if model_id == gr.update():          # off the rows
        return model_id, gr.update()
    return model_id, remember_selection(model_id, memory)


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    gr.Markdown("Models in the registry. Select one, then act on it. A model tags once it is converted to ONNX, "
                "validated and enabled; a first conversion does all three.")
    models = gr.Dataframe(headers=MODEL_COLUMNS, interactive=False, wrap=True, label="Models",
                          elem_classes="imgai-table", elem_id="models-table")   # filled per visitor on load
    with gr.Row():
        selected = gr.Dropdown(label="Selected model", choices=[],   # filled per visitor on load
                               scale=2, allow_custom_value=True)  # the registry checks the id
        detail = gr.Markdown()
    with gr.Row():
        convert_btn = gr.Button("Convert to ONNX", variant="primary")
        int8_btn = gr.Button("INT8")
        validate_btn = gr.Button("Validate")
        enable_btn = gr.Button("Enable")
        disable_btn = gr.Button("Disable")
        default_btn = gr.Button("Set default")
        remove_btn = gr.Button("Remove…", variant="stop")
    with gr.Group(visible=False, elem_id="confirm-remove") as confirm_box:
        plan_md = gr.Markdown()
        with gr.Row():
            confirm_btn = gr.Button("Confirm remove", variant="stop")
            keep_btn = gr.Button("Keep it")
    restore_btn = gr.Button("Restore the demo model", visible=False)
    with gr.Accordion("INT8 options and result", open=False):
        int8_inputs, int8_result = int8.build_options()
    message = gr.Markdown()
    jobs_table = gr.Dataframe(headers=JOB_COLUMNS, interactive=False, label="Conversion jobs (live)", wrap=True,
                              elem_classes="imgai-table", elem_id="convert-jobs")
    with gr.Accordion("Push a converted model to the Hub", open=False):
        build_push(demo, page)

    buttons = [convert_btn, int8_btn, validate_btn, enable_btn, disable_btn, default_btn, remove_btn]
    pending = gr.State(None)   # the model whose removal plan was shown
    remembered = page.memory   # a reload keeps the selection
    page.restore(lambda memory: (memory or {}).get("convert") or None, [remembered], [selected])
    page.listen(refresh, [selected], [models, selected, jobs_table, restore_btn, detail, *buttons],
                api_name="convert_refresh")
    page.listen(int8.panel, [selected], [int8_result], also=(selected.change,))
    selected.input(remember_selection, [selected, remembered], [remembered], api_name=False, queue=False)
    models.select(pick_row, [remembered], [selected, remembered], api_name=False)
    selected.change(action_state, [selected], [detail, *buttons], api_name=False, show_progress="hidden")

    for button, fn, name, extra in ((convert_btn, convert_model, "convert", []),
                                    (int8_btn, int8.quantize_model, "int8", int8_inputs),
                                    (validate_btn, validate_model, "validate", []),
                                    (enable_btn, enable_model, "enable", [int8_inputs[3]]),
                                    (disable_btn, disable_model, "disable", []),
                                    (default_btn, default_model, "set_default", [])):
        page.changed(button.click(fn, [selected, *extra], [message], api_name=name, show_progress_on=[message]))
    remove_btn.click(ask_remove, [selected], [plan_md, pending, confirm_box], api_name="remove_plan",
                     show_progress_on=[message])
    page.changed(confirm_btn.click(remove_model, [selected, pending], [message, pending, confirm_box],
                                   api_name="remove", show_progress_on=[message]))
    keep_btn.click(keep_model, None, [message, pending, confirm_box], api_name=False)
    page.changed(restore_btn.click(restore, None, [message], api_name="restore_demo", show_progress_on=[message]))
