"""Push to Hub: a converted (ONNX, validated) model with its generated card, in one commit, then
verified. On a Space the push uses the token of the visitor who clicked (Sign in button), never
the Space's own; locally, HF_TOKEN or the cached `huggingface-cli login`.
`build_push(demo)` lays it out wherever it is called (also usable as a tab: `build`)."""

import gradio as gr

from imgai import hub, registry

from .common import acting
from .hub_browse import build_login_row
from .page import Page


def pushable_models(actor) -> list[str]:
    return [m.id for m in registry.list_models(actor=actor) if m.type == registry.ONNX and m.valid]


@acting
def refresh_models(current: str | None, *, actor):
    ids = pushable_models(actor)
    return gr.update(choices=ids, value=current if current in ids else (ids[0] if ids else None))


@acting
def push(model_id: str, repo_id: str, private: bool, branch: str, *, actor, oauth_token=None) -> str:
    token = hub.visitor_token(oauth_token.token if oauth_token is not None else None)
    result = hub.push_model(model_id, (repo_id or "").strip(), token=token, private=bool(private),
                            revision=(branch or "").strip() or None, actor=actor)
    return (f"Pushed **{model_id}** to [{result.repo_id}]({result.url}) on `{result.revision}` "
            f"(commit `{result.commit_oid[:12]}`): {len(result.files)} files, verified on the Hub.")


def build_push(demo: gr.Blocks, page=None) -> None:
    gr.Markdown("### Push to the Hub\nA converted model goes up with `model.onnx`, `labels.json`, "
                "`preprocess.json` and a generated model card, in one commit, checked file by file afterwards.")
    page = page or Page(demo, standalone=True)
    build_login_row(demo, page, api_name="push_whoami")
    with gr.Row():
        model = gr.Dropdown(choices=[], label="Converted model", scale=2,   # filled per visitor on load
                            allow_custom_value=True)   # the registry checks the id
        repo = gr.Textbox(label="Hub repo", placeholder="your-name/model-name", scale=2)
        branch = gr.Textbox(label="Branch", value="main", scale=1)
        private = gr.Checkbox(label="Private (new repos)", value=False, scale=1)
    button = gr.Button("Push to Hub", variant="primary")
    message = gr.Markdown()
    page.listen(refresh_models, [model], [model], api_name="push_models")   # follows the registry (ui/page.py)
    button.click(push, [model, repo, private, branch], [message], api_name="push_to_hub",
                 show_progress_on=[message])


build = build_push
