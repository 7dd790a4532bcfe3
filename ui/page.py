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
the script presses the button every POLL_S, as the timer did.

Only the open tab reads. A listener of a tab (built inside `page.tab(id)`) runs when the revision
moves while its tab is open, and when its tab is opened on a revision it has not shown yet: each
tab has its own State, the revision it last read, and one event (`deliver`) hands the revision to
the open tab's State only. With every tab's lists refreshed on every move (a gradio event per
tab, each tab's tables re-rendered though hidden), one page open on Start beside a running job took
61 CPU-s a minute, app and Chromium; 16.7 now (bench/idle_server.py --busy). What a tab reads once
(`page.on_open`) runs at its first opening, not at the page's load. Listeners built outside a tab, or
with `every_tab=True` (the Start tab's demo status, which every tab's first read waits for), run
on every move, as before."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

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


# gradio 6.17.3's Dataframe draws its rows through a virtualizer that re-reads its window only when a
# table gets its first rows (0 → N); when the number of rows changes later (1 → 2: a second model, a
# second tagged image), the new rows are drawn only if something happens to scroll or resize the table,
# else never (a bare Blocks app does it every time; in ours it raced with the layout: the Tag tab's
# table once kept 1 row of 2). Fixed upstream by gradio PR #13744, after the 6.17 line that the
# huggingface_hub<1.0 pin holds us to. Until then: when anything changes inside a table (a new value
# restyles its header cells), every visible table's viewport gets a scroll event, which makes its
# virtualizer read its rows again; at most once per TABLE_QUIET_S (a change meanwhile waits for its
# end). A redraw that finds nothing new changes nothing, so an idle page does nothing (the test counts).
TABLE_QUIET_S = 0.4
_TABLES_JS = f"""() => {{
    if (window.imgaiTableDraw) return;
    let quietUntil = 0, pending = null;
    const draw = () => {{
        pending = null;
        quietUntil = performance.now() + {int(TABLE_QUIET_S * 1000)};
        for (const viewport of document.querySelectorAll(".virtual-table-viewport")) {{
            if (viewport.offsetParent !== null) viewport.dispatchEvent(new Event("scroll"));
        }}
    }};
    const inTable = (record) => {{
        const node = record.target.nodeType === 1 ? record.target : record.target.parentElement;
        return node !== null && node.closest(".table-container") !== null;
    }};
    window.imgaiTableDraws = 0;                 // how many times the tables were made to draw
    window.imgaiTableDraw = new MutationObserver((records) => {{
        if (pending === null && records.some(inTable)) {{
            pending = setTimeout(() => {{ window.imgaiTableDraws += 1; draw(); }},
                                 Math.max(50, quietUntil - performance.now()));
        }}
    }});
    window.imgaiTableDraw.observe(document.body, {{subtree: true, childList: true, attributes: true,
                                                   characterData: true}});
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
    def __init__(self, demo: gr.Blocks, *, tab_ids: tuple[str, ...] = (), standalone: bool = False):
        """`tab_ids`: the page's tabs (built with `page.tab(id)`); `standalone`: a tab built alone in
        its own Blocks (tests): the page starts watching now."""
        self.demo = demo
        self.revision = gr.State("")
        self.open = gr.State("")          # the id of the tab the visitor has open
        self.tabs: gr.Tabs | None = None
        self._building: str | None = None
        # tab id → the revision its lists last read. Made here, outside the tabs: a State inside a tab
        # that is not open gets a change event for any answer sent to it (gradio 6.17.3), the same
        # value or gr.skip() included, and then every tab's lists would read again on every move.
        self._shown: dict[str, gr.State] = {tab_id: gr.State("") for tab_id in tab_ids}
        self._opened: dict[str, gr.State] = {tab_id: gr.State(False) for tab_id in tab_ids}   # opened once
        self._restores: list[tuple] = []
        # what the visitor picked, kept in the browser across reloads ({"convert": model id, …}); made
        # here, outside the tabs, so it is mounted (and read) before the page's first load events
        self.memory = gr.BrowserState({}, storage_key="imgai-page")
        if standalone:
            self.start()

    @contextmanager
    def tab(self, tab_id: str) -> Iterator[None]:
        """Build the contents of the tab `tab_id` (one of the page's `tab_ids`): their listeners run
        while it is open."""
        if tab_id not in self._shown:
            raise ValueError(f"tab {tab_id!r} is not one of this page's tabs {list(self._shown)}")
        self._building = tab_id
        try:
            yield
        finally:
            self._building = None

    def opened(self, tab: gr.Tab, tab_id: str) -> None:
        """The visitor's click on `tab` opens it: its lists read the revision if they have not."""
        def open_tab() -> str:
            return tab_id

        tab.select(open_tab, None, [self.open], api_name=False, show_progress="hidden", concurrency_limit=None)

    @property
    def on_open(self):
        """The event "this tab is open for the first time on this page" (inside `page.tab(id)`; else
        the page's load), for what a tab reads once: the sign-in status, the buttons the visitor may
        press. Call it as `page.on_open(fn, inputs, outputs)`, or list it in `gr.on([...])`."""
        return self.demo.load if self._building is None else self._opened[self._building].change

    def show(self, tab_id: str) -> tuple:
        """The outputs [page.tabs, page.open] of a handler that switches to `tab_id` (a click does not
        happen, so the tab's select event does not either)."""
        return gr.Tabs(selected=tab_id), tab_id

    def listen(self, fn, inputs=None, outputs=None, *, also=(), every_tab: bool = False, api_name=False,
               **kwargs) -> None:
        """Run `fn` when the page loads, whenever anything listed changes (the page's load sets the
        revision, which fires every listener once) and on the tab's own triggers `also` (a field's
        change): one listener, so its answers land in the order of their causes, never an older one last.
        Inside `page.tab(id)`, the load and the changes count only while that tab is open (see above)."""
        trigger = self.revision if self._building is None or every_tab else self._shown[self._building]
        gr.on([trigger.change, *also], fn, inputs, outputs, api_name=api_name, show_progress="hidden",
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
        if self._shown:
            ids = list(self._shown)

            def deliver(revision: str, open_tab: str, *known):
                """The revision to the open tab's lists, and the open tab marked opened; the other
                tabs' States keep their values, so their change events do not fire."""
                shown, opened = known[:len(ids)], known[len(ids):]
                return ([revision if tab_id == open_tab else read for tab_id, read in zip(ids, shown)]
                        + [was or tab_id == open_tab for tab_id, was in zip(ids, opened)])

            states = [self._shown[tab_id] for tab_id in ids] + [self._opened[tab_id] for tab_id in ids]
            gr.on([self.revision.change, self.open.change], deliver, [self.revision, self.open, *states], states,
                  api_name=False, show_progress="hidden", trigger_mode="always_last", concurrency_limit=None)
        poke = gr.Button("", visible="hidden", elem_id=POKE_ID)
        # queued (a State's change event fires only for queued events), but never waiting behind work
        poke.click(changes.revision, None, [self.revision], api_name=False, show_progress="hidden",
                   concurrency_limit=None)
        self.demo.load(None, None, None, js=_WATCH_JS, api_name=False)
        self.demo.load(None, None, None, js=_TABLES_JS, api_name=False)
