"""What the tabs of one page share: one source of truth for everything they list.

`page.revision` is a gr.State holding `imgai.changes.revision()`: one timer per page reads it, and
when it moves (a model added in Browse, a conversion that ends, a training run, a quantize output,
the CLI in another terminal) its change event runs every listener registered with `page.listen`,
so each tab rebuilds its lists from the registry and the job table at once. Every action that
changes something ends with `page.changed(event)`, which reads the revision straight away."""

from __future__ import annotations

import gradio as gr

from imgai import changes

POLL_S = 1.5


class Page:
    def __init__(self, demo: gr.Blocks, *, standalone: bool = False):
        """`standalone`: a tab built alone in its own Blocks (tests): the page starts its timer now."""
        self.demo = demo
        self.revision = gr.State("")
        self.tabs: gr.Tabs | None = None
        self._restores: list[tuple] = []
        # what the visitor picked, kept in the browser across reloads ({"convert": model id, …}); made
        # here, outside the tabs, so it is mounted (and read) before the page's first load events
        self.memory = gr.BrowserState({}, storage_key="imgai-page")
        if standalone:
            self.start()

    def listen(self, fn, inputs=None, outputs=None, *, api_name=False, **kwargs) -> None:
        """Run `fn` when the page loads and whenever anything listed changes (the page's load sets
        the revision, which fires every listener once)."""
        self.revision.change(fn, inputs, outputs, api_name=api_name, show_progress="hidden", **kwargs)

    def changed(self, event):
        """After `event` (an action that changed something), read the revision now, not at the next tick."""
        return event.then(changes.revision, None, [self.revision], api_name=False, show_progress="hidden")

    def restore(self, fn, inputs, outputs) -> None:
        """Before the page's first read, run `fn` (a reload putting back what the visitor had picked,
        kept in the browser), so the listeners' first run already sees it."""
        self._restores.append((fn, inputs, outputs))

    def start(self) -> None:
        """The first read and the one timer of the page (call once, after every tab is built)."""
        event = None
        for fn, inputs, outputs in self._restores:
            step = event.then if event is not None else self.demo.load
            event = step(fn, inputs, outputs, api_name=False, show_progress="hidden", queue=False)
        step = event.then if event is not None else self.demo.load
        step(changes.revision, None, [self.revision], api_name=False, show_progress="hidden")
        # queued (a State's change event fires only for queued events), but never waiting behind work
        gr.Timer(POLL_S).tick(changes.revision, None, [self.revision], api_name=False, show_progress="hidden",
                              concurrency_limit=None)
