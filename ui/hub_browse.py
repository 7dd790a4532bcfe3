"""Browse tab, the Hub part: search supported models, inspect one, download it as a job with byte
progress, and the login status. `build_search(demo)` lays it out inside the Browse tab (ui/browse.py
calls it). When the Hub cannot be reached, it says so in one line and lists the supported models
already in the local HF cache, which download (register) offline."""

import inspect
from typing import Optional

import gradio as gr

from imgai import hub, jobs
from imgai.config import on_space
from imgai.hub.auth import Token
from imgai.hub.search import COLUMNS, FAMILY_NAMES, LIBRARIES, SORTS
from imgai.presentation.hub import NO_REPO, details_markdown, download_words

from .common import acting, clicked_row_id, guard, locks

ANY = "any"
SORT_LABELS = {"downloads": "downloads", "likes": "likes", "updated": "recently updated"}


def _token(oauth_token) -> Token:
    return hub.visitor_token(oauth_token.token if oauth_token is not None else None)


def _with_oauth(fn):
    """On a Space the handler gets the visitor's `gr.OAuthToken` in its `oauth_token` parameter;
    locally there is no login button (gradio's local mock needs a token at start-up), so it gets
    None. Gradio injects only positional-or-keyword parameters that it finds in the signature and
    the annotations, so the wrapper declares `oauth_token` as one (a keyword-only one gets nothing)."""
    if on_space():
        def wrapper(*args):
            return fn(*args)
        sig = inspect.signature(fn)
        hint = Optional[gr.OAuthToken]
        wrapper.__signature__ = sig.replace(parameters=[p.replace(annotation=hint) if p.name == "oauth_token" else p
                                                        for p in sig.parameters.values()])
        wrapper.__annotations__ = {"oauth_token": hint}
    else:
        def wrapper(*args):
            return fn(*args, oauth_token=None)
    wrapper.__name__ = fn.__name__
    return wrapper


def _table(models) -> list[list]:
    return [m.row() for m in models]


@guard
def start() -> tuple:
    result = hub.landing()
    return result.message, _table(result.models)


@guard
def search_models(query: str, family: str, library: str, sort: str, oauth_token=None) -> tuple:
    result = hub.search(query or "", family=None if family in (ANY, None) else family,
                        library=None if library in (ANY, None) else library, sort=sort or "downloads", limit=30,
                        token=_token(oauth_token))
    return result.message, _table(result.models)


@guard
def show_details(repo_id: str, oauth_token=None) -> str:
    return details_markdown(hub.info(repo_id, token=_token(oauth_token))) if repo_id else NO_REPO


@acting
def access_state(*, actor):
    """Download greyed, with the policy's reason, for a visitor who may not download."""
    note, allowed = locks(actor, ("hub.download",))
    return note, gr.update(interactive=allowed["hub.download"])


@acting
def start_download(repo_id: str, *, actor, oauth_token=None) -> tuple:
    job = hub.download(repo_id, token=_token(oauth_token), actor=actor)
    return job.id, f"Download of **{repo_id}** queued as job `{job.id}`."


@acting
def download_status(job_id: str, *, actor) -> str:
    return download_words(jobs.get(job_id, actor=actor)) if job_id else ""


@guard
def login_status(oauth_token=None) -> str:
    message = hub.whoami(_token(oauth_token)).message
    return message[:1].upper() + message[1:]


def build_login_row(demo: gr.Blocks, page, *, api_name: str = "hub_whoami") -> gr.Markdown:
    """"Signed in as NAME" / "not signed in", with the Sign in button on a Space (layout, no logic)."""
    with gr.Row():
        status = gr.Markdown()
        if on_space():
            gr.LoginButton(scale=0)
    page.on_open(_with_oauth(login_status), None, [status], api_name=api_name)
    return status


def build_search(demo: gr.Blocks, page) -> None:
    gr.Markdown("### Find a model on the Hugging Face Hub")
    build_login_row(demo, page)
    with gr.Row():
        query = gr.Textbox(label="Search", placeholder="vit, convnext, swin, resnet …", scale=3)
        family = gr.Dropdown([ANY, *FAMILY_NAMES], value=ANY, label="Family", scale=1)
        library = gr.Dropdown([ANY, *LIBRARIES[:2]], value=ANY, label="Library", scale=1)
        sort = gr.Dropdown([(SORT_LABELS[k], k) for k in SORTS], value="downloads", label="Sort by", scale=1)
        go = gr.Button("Search", variant="primary", scale=0)
    status = gr.Markdown()
    results = gr.Dataframe(headers=[c.title() for c in COLUMNS], interactive=False, wrap=True, label="Results")
    with gr.Row():
        repo_id = gr.Textbox(label="Selected repo", placeholder="org/name[@revision]", scale=3)
        download = gr.Button("Download", variant="primary", scale=1)
    download_lock = gr.Markdown(elem_id="browse-download-lock")
    details = gr.Markdown()
    job_id = gr.Textbox(visible=False)
    progress = gr.Markdown()

    page.on_open(start, None, [status, results], api_name="hub_start")
    page.on_open(access_state, None, [download_lock, download], api_name=False)
    search = _with_oauth(search_models)
    go.click(search, [query, family, library, sort], [status, results], api_name="hub_search")
    query.submit(search, [query, family, library, sort], [status, results], api_name=False)
    results.select(clicked_row_id, None, [repo_id], api_name=False)
    repo_id.change(_with_oauth(show_details), [repo_id], [details], api_name="hub_info")
    download.click(start_download, [repo_id], [job_id, progress], api_name="hub_download",
                   show_progress_on=[progress])
    if page is not None:   # the download's progress moves the page's revision (ui/page.py)
        page.listen(download_status, [job_id], [progress], api_name="hub_download_status")
    else:
        gr.Timer(1.0).tick(download_status, [job_id], [progress], show_progress="hidden", queue=False,
                           api_name="hub_download_status")
