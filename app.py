"""imgai: the Gradio app (`python app.py`, or a Hugging Face Space as is).

Layout and wiring only: each tab lives in ui/<tab>.py and calls into the imgai package.
"""

from __future__ import annotations

import ui  # noqa: F401  (before gradio: ui/__init__.py spares gradio's import its type-stub rewriting)
import gradio as gr

from ui import browse, convert, library, quantize, start, tag, train
from ui.page import Page

# The tabs, in the order a user meets them. Each module has `build(demo, page)`.
TABS = [("Start", start), ("Tag", tag), ("Library", library), ("Browse", browse), ("Convert", convert), ("Train", train),
        ("Quantize", quantize)]

CSS = """
.imgai-header {margin-bottom: 0.25rem}
.imgai-table th, .imgai-table th * {word-break: normal !important; overflow-wrap: normal !important; hyphens: none}
"""


def remembering(tab_id: str):
    """The handler of a tab's select event: the tab's id, kept in the browser (start.opening_tab)."""
    def remember_tab() -> str:
        return tab_id

    return remember_tab


def build_app() -> gr.Blocks:
    from imgai import files, words

    words.use(words.UI)   # imgai's messages speak of fields and buttons here, not flags
    # uploads and gradio's copies of results go after IMGAI_FILES_TTL, as the result folders do
    with gr.Blocks(title="imgai", delete_cache=files.cache_schedule()) as demo:
        gr.Markdown("## imgai — a model workshop for image AI", elem_classes="imgai-header")
        ids = [title.lower() for title, _ in TABS]
        page = Page(demo, tab_ids=tuple(ids))
        # a reload comes back to the tab the visitor was on (kept in the browser, as the Convert selection)
        last_tab = gr.BrowserState("", storage_key="imgai-tab")
        with gr.Tabs() as tabs:
            page.tabs = tabs
            for title, module in TABS:
                tab_id = title.lower()
                with gr.Tab(title, id=tab_id) as tab, page.tab(tab_id):
                    module.build(demo, page)
                tab.select(remembering(tab_id), None, [last_tab], api_name=False, queue=False,
                           show_progress="hidden")
                page.opened(tab, tab_id)

        def opening_tab(last: str | None) -> gr.Tabs:
            return gr.Tabs(selected=start.opening_tab(last, ids))

        def opening_tab_id(last: str | None) -> str:
            return start.opening_tab(last, ids)

        # at once (before a click), then the page's open tab (queued: a State's change fires then)
        demo.load(opening_tab, [last_tab], [tabs], api_name=False, queue=False).then(
            opening_tab_id, [last_tab], [page.open], api_name=False, show_progress="hidden")
        page.start()
    return demo


def main() -> None:
    import os

    from starlette.middleware import Middleware

    from imgai import files, settings, startup
    from ui.common import queue
    from ui.page import middleware as page_middleware
    from ui.security import RefuseFileRedirects

    startup.prepare()
    demo = build_app()
    queue(demo, default_concurrency_limit=4, max_size=64)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        app_kwargs={"middleware": [Middleware(RefuseFileRedirects), *page_middleware()]},
        allowed_paths=[str(files.root())],   # visitors' result files; never served by path (ui/security.py)
        css=CSS,
        show_error=True,
        max_file_size=settings.get("IMGAI_MAX_UPLOAD"),   # a bad upload cannot fill the disk
    )


if __name__ == "__main__":
    main()
