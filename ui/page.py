"""What the tabs of one page share: one source of truth for everything they list.

`page.revision` is a gr.State holding `imgai.changes.revision()`. When it moves (a model added in
Browse, a conversion that ends, a training run, a quantize output, the CLI in another terminal) its
change event runs every listener registered with `page.listen`, so each tab rebuilds its lists from
the registry and the job table at once. Every action that changes something ends with
`page.changed(event)`, which reads the revision straight away.

How a page learns of a change made elsewhere: a script in the page asks `GET imgai/revision` (a
plain route, `RevisionRoute`: no gradio event, a few bytes) every POLL_S, and only when the answer
differs from the last one does it press the page's hidden poke button, whose queued event reads the
revision into the State. A gr.Timer did the same with a full queued gradio event every tick: an idle
page open in Chromium took 11.6 CPU-s a minute (app and browser), 7.7 with the watch
(bench/idle_server.py --page, one run). Where the route is missing (a Blocks mounted elsewhere),
the script presses the button every POLL_S, as the timer did."""

from __future__ import annotations

import gradio as gr

from imgai import changes

from .security import send_text

POLL_S = 1.5
REVISION_PATH = "/imgai/revision"
POKE_ID = "imgai-page-poke"

# one interval per page; the first answer always pokes (the page's load may have read an older one)
_WATCH_JS = f"""() => {{
    if (window.imgaiRevisionWatch) return;
    let last = null;
    const poke = () => {{
        const el = document.getElementById("{POKE_ID}");
        (el && el.tagName === "BUTTON" ? el : el?.querySelector("button"))?.click();
    }};
    window.imgaiRevisionWatch = setInterval(async () => {{
        try {{
            const answer = await fetch("{REVISION_PATH.lstrip("/")}", {{cache: "no-store"}});
            if (!answer.ok) {{ poke(); return; }}
            const now = await answer.text();
            if (now !== last) {{ last = now; poke(); }}
        }} catch (e) {{ poke(); }}
    }}, {int(POLL_S * 1000)});
}}"""


class RevisionRoute:
    """ASGI middleware answering `GET /imgai/revision` with `changes.revision()` (text/plain, not
    cached); every other request goes on to the app. The revision says only that something listed
    changed, never what: the page's own events read what the visitor may see."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path") == REVISION_PATH and scope.get("method") == "GET":
            from starlette.concurrency import run_in_threadpool

            body = (await run_in_threadpool(changes.revision)).encode()
            return await send_text(send, 200, body, ((b"cache-control", b"no-store"),))
        await self.app(scope, receive, send)


def middleware() -> list:
    """The middleware a page's app needs (pass as `launch(app_kwargs={"middleware": ...})`)."""
    from starlette.middleware import Middleware

    return [Middleware(RevisionRoute)]


class Page:
    def __init__(self, demo: gr.Blocks, *, standalone: bool = False):
        """`standalone`: a tab built alone in its own Blocks (tests): the page starts watching now."""
        self.demo = demo
        self.revision = gr.State("")
        self.tabs: gr.Tabs | None = None
        self._restores: list[tuple] = []
        # what the visitor picked, kept in the browser across reloads ({"convert": model id, …}); made
        # here, outside the tabs, so it is mounted (and read) before the page's first load events
        self.memory = gr.BrowserState({}, storage_key="imgai-page")
        if standalone:
            self.start()

    def listen(self, fn, inputs=None, outputs=None, *, also=(), api_name=False, **kwargs) -> None:
        """Run `fn` when the page loads, whenever anything listed changes (the page's load sets the
        revision, which fires every listener once) and on the tab's own triggers `also` (a field's
        change): one listener, so its answers land in the order of their causes, never an older one last."""
        gr.on([self.revision.change, *also], fn, inputs, outputs, api_name=api_name, show_progress="hidden",
              trigger_mode="always_last", **kwargs)

    def changed(self, event):
        """After `event` (an action that changed something), read the revision now, not at the next tick."""
        return event.then(changes.revision, None, [self.revision], api_name=False, show_progress="hidden")

    def restore(self, fn, inputs, outputs) -> None:
        """Before the page's first read, run `fn` (a reload putting back what the visitor had picked,
        kept in the browser), so the listeners' first run already sees it."""
        self._restores.append((fn, inputs, outputs))

    def start(self) -> None:
        """The first read and the change watch of the page (call once, after every tab is built)."""
        event = None
        for fn, inputs, outputs in self._restores:
            step = event.then if event is not None else self.demo.load
            event = step(fn, inputs, outputs, api_name=False, show_progress="hidden", queue=False)
        step = event.then if event is not None else self.demo.load
        step(changes.revision, None, [self.revision], api_name=False, show_progress="hidden")
        poke = gr.Button("", visible="hidden", elem_id=POKE_ID)
        # queued (a State's change event fires only for queued events), but never waiting behind work
        poke.click(changes.revision, None, [self.revision], api_name=False, show_progress="hidden",
                   concurrency_limit=None)
        self.demo.load(None, None, None, js=_WATCH_JS, api_name=False)
