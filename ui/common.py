"""What every tab shares: translating imgai errors at the edge, and small display helpers."""

from __future__ import annotations

import functools
import time

import gradio as gr

from imgai.errors import ImgaiError
from imgai.log import get_logger


def guard(fn):
    """Run a handler; an imgai error becomes a gr.Error with its message, anything else is logged
    with its traceback and shown as a short error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ImgaiError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        except gr.Error:
            raise
        except Exception as exc:
            get_logger("imgai.app").exception("handler %s failed", fn.__name__)
            raise gr.Error(f"{type(exc).__name__}: {exc} (details in logs/imgai.log)", print_exception=False) from exc

    return wrapper


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


def visitor(request: gr.Request | None) -> str | None:
    """Who is asking: on a Space, the signed-in user or else this browser session, so one
    visitor's jobs are never shown to another; locally, None (one user, everything visible)."""
    from imgai.config import on_space

    if not on_space() or request is None:
        return None
    return getattr(request, "username", None) or f"session:{request.session_hash}"


def first_cell(evt: gr.SelectData, table):
    """The first column of the row a visitor clicked (its id), or no change when the click was off
    the rows (a header, an emptied table)."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        return table.iloc[row, 0]
    except (IndexError, AttributeError, TypeError):
        return gr.update()
