"""Push to Hub: a converted (ONNX, validated) model with its generated card, in one commit, then
verified. On a Space the push uses the token of the visitor who clicked (Sign in button), never
the Space's own; locally, HF_TOKEN or the cached `huggingface-cli login`.
`build_push(demo)` lays it out wherever it is called (also usable as a tab: `build`)."""

from typing import Optional

import gradio as gr

from imgai import hub, registry
from imgai.config import on_space

from .common import guard
from .hub_browse import login_row


def pushable_models() -> list[str]:
    return [m.id for m in registry.list_models() if m.type == registry.ONNX and m.valid]


def refresh_models(current: str | None):
    ids = pushable_models()
    return gr.update(choices=ids, value=current if current in ids else (ids[0] if ids else None))


@guard
def push(model_id: str, repo_id: str, private: bool, branch: str, oauth_token=None) -> str:
    token = hub.visitor_token(oauth_token.token if oauth_token is not None else None)
    result = hub.push_model(model_id, (repo_id or "").strip(), token=token, private=bool(private),
                            revision=(branch or "").strip() or None)
    return (f"✅ Pushed **{model_id}** to [{result.repo_id}]({result.url}) on `{result.revision}` "
            f"(commit `{result.commit_oid[:12]}`): {len(result.files)} files, verified on the Hub.")


def _push_handler():
    if on_space():
        def push_to_hub(model_id, repo_id, private, branch, oauth_token: Optional[gr.OAuthToken] = None):
            return push(model_id, repo_id, private, branch, oauth_token=oauth_token)
    else:
        def push_to_hub(model_id, repo_id, private, branch):
            return push(model_id, repo_id, private, branch, oauth_token=None)
    return push_to_hub


def build_push(demo: gr.Blocks, page=None) -> None:
    gr.Markdown("### Push to the Hub\nA converted model goes up with `model.onnx`, `labels.json`, "
                "`preprocess.json` and a generated model card, in one commit, checked file by file afterwards.")
    login_row(demo, api_name="push_whoami")
    with gr.Row():
        model = gr.Dropdown(choices=pushable_models(), label="Converted model", scale=2)
        repo = gr.Textbox(label="Hub repo", placeholder="your-name/model-name", scale=2)
        branch = gr.Textbox(label="Branch", value="main", scale=1)
        private = gr.Checkbox(label="Private (new repos)", value=False, scale=1)
    button = gr.Button("Push to Hub", variant="primary")
    message = gr.Markdown()
    if page is not None:    # the list follows the registry (ui/page.py)
        page.listen(refresh_models, [model], [model], api_name="push_models")
    else:
        demo.load(refresh_models, [model], [model], api_name="push_models")
    button.click(_push_handler(), [model, repo, private, branch], [message], api_name="push_to_hub")


build = build_push
