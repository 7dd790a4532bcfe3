"""One message source for two places: the app speaks in fields and buttons, the CLI in flags and
commands. A message names a thing by a marker, `words.term("model")` → "⟦model⟧", and is rendered
for the place that shows it: "pass ⟦model⟧" reads "pass --model ID" in a terminal and "pick one in
the Model field" … in the app.

The place is per process (the app sets "ui" at start, the CLI "cli"; a job worker keeps the
markers, "raw", so what it stores in the job table is rendered by whoever reads it), and can be
overridden for a block with `speaking(place)`.
"""

from __future__ import annotations

import contextlib
import contextvars
import re

CLI, UI, RAW = "cli", "ui", "raw"

# marker → (how the CLI says it, how the app says it)
TERMS: dict[str, tuple[str, str]] = {
    "model": ("--model ID", "the **Model** field"),
    "source": ("--source KEY=PATH (e.g. --source sd15=./my-sd15)", "the **Source** field (a Hub id or a folder)"),
    "source-one": ("--source with a local diffusers folder", "a local diffusers folder in the **Source** field"),
    "force": ("--force", "the **Force** box"),
    "device-cpu": ("--device cpu", "**cpu** in the **Device** field"),
    "models-list": ("`imgai models list`", "the **Convert** tab's table"),
    "jobs-list": ("`imgai jobs list`", "the job tables"),
    "convert": ("`imgai models convert ID`", "**Convert to ONNX** in the **Convert** tab"),
    "enable": ("`imgai models enable ID`", "**Enable** in the **Convert** tab"),
    "set-default": ("`imgai models default ID`", "**Set default** in the **Convert** tab"),
    "restore-demo": ("`imgai models demo`", "**Restore the demo model** in the **Convert** tab"),
    "add": ("`imgai models add SOURCE`", "**Add model** in the **Browse** tab"),
    "remove": ("`imgai models remove ID`", "**Remove** in the **Convert** tab"),
    "name": ("--name NAME", "the **Name** field"),
    "repo": ("a Hub id like org/name", "a repo picked in the results (or typed in **Selected repo**)"),
    "train": ("`imgai train start MODEL --data DATA`", "**Train** in the **Train** tab"),
    "data": ("--data NAME_OR_FOLDER", "the **Data Source** field"),
}

_PLACE: contextvars.ContextVar[str | None] = contextvars.ContextVar("imgai_place", default=None)
_process_place = CLI   # threads start with an empty context, so the process's place is a plain global
_MARK = re.compile(r"⟦([a-z-]+)⟧")


def term(key: str) -> str:
    """The marker for `key` (fails loudly on an unknown key, so a typo cannot reach a user)."""
    if key not in TERMS:
        raise KeyError(f"no term {key!r}; known: {', '.join(sorted(TERMS))}")
    return f"⟦{key}⟧"


def render(text: str | None, place: str | None = None) -> str | None:
    """`text` with every marker in the words of `place` (default: this process's place)."""
    if not text or "⟦" not in text:
        return text
    place = place or _PLACE.get() or _process_place
    if place == RAW:
        return text
    index = 0 if place == CLI else 1
    return _MARK.sub(lambda m: TERMS[m[1]][index] if m[1] in TERMS else m[0], text)


def use(place: str) -> str:
    """Set the place of this process (the app: "ui"; the CLI: "cli"; a job worker: "raw"); returns
    the place it had."""
    if place not in (CLI, UI, RAW):
        raise ValueError(f"place must be one of cli, ui, raw, not {place!r}")
    global _process_place
    before, _process_place = _process_place, place
    return before


def place() -> str:
    return _PLACE.get() or _process_place


@contextlib.contextmanager
def speaking(place_: str):
    token = _PLACE.set(place_)
    try:
        yield
    finally:
        _PLACE.reset(token)


_MARKUP = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`")


def plain(text: str | None) -> str | None:
    """`text` without the markdown the app uses for emphasis (**bold**, `code`): for places that show
    text as it is (error pop-ups, table cells, a terminal)."""
    if not text:
        return text
    return _MARKUP.sub(lambda m: m[1] if m[1] is not None else m[2], text)
