"""What every tab shares: who is asking (the actor), translating imgai errors at the edge, and
small display helpers."""

from __future__ import annotations

import functools
import inspect
from typing import Optional

import gradio as gr

from imgai import access
from imgai.access import Actor
from imgai.config import on_space
from imgai.errors import ImgaiError
from imgai.log import get_logger
from imgai.words import plain
from imgai.presentation.jobs import when  # noqa: F401  (the tabs' time format, defined with the job rows)
from imgai.presentation.locks import lock_note, locks, shown_folder  # noqa: F401  (the policy in words)


# gradio 6.17.3's queue looks for work every 1 ms when it has none (and for progress every 10 ms): an
# idle app then takes 7-8 % of a core, on a Space as anywhere (bench/idle_server.py). 20 ms keeps an
# event's start below what a person notices, and the idle app near 1 %.
QUEUE_POLL_S = 0.02
PROGRESS_POLL_S = 0.05


def queue(demo: gr.Blocks, **kwargs) -> gr.Blocks:
    """`demo.queue(**kwargs)`, polling for work every QUEUE_POLL_S instead of every millisecond."""
    demo.queue(**kwargs)
    q = getattr(demo, "_queue", None)          # gradio's own attribute names (a newer gradio: left as it is)
    if q is not None and hasattr(q, "sleep_when_free"):
        q.sleep_when_free, q.progress_update_sleep_when_free = QUEUE_POLL_S, PROGRESS_POLL_S
    return demo


def guard(fn):
    """Run a handler; an imgai error becomes a gr.Error with its message (in plain words: a pop-up
    shows no markdown), anything else is logged with its traceback and shown as a short error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ImgaiError as exc:
            raise gr.Error(plain(str(exc)), print_exception=False) from exc
        except gr.Error:
            raise
        except Exception as exc:
            get_logger("imgai.app").exception("handler %s failed", fn.__name__)
            raise gr.Error(f"{type(exc).__name__}: {exc} (details in logs/imgai.log)", print_exception=False) from exc

    return wrapper


def actor(request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> Actor:
    """Who is asking. In a public app: the Hugging Face user signed in with the login button
    (`profile.username`; gradio's `request.username` stays None after that sign-in), else this
    page's session. Locally: the local owner (imgai.access.actor_for)."""
    return access.actor_for(username=getattr(profile, "username", None) if profile is not None else None,
                            session=getattr(request, "session_hash", None) if request is not None else None)


def sign_in_offered() -> bool:
    """The login button exists only on a Space: elsewhere gradio's OAuth mock needs a token to start."""
    return on_space()


def acting(fn):
    """Wire `fn(*inputs, actor=…[, oauth_token=…])` as a gradio handler: gradio passes the event's
    inputs, then gr.Request and, where sign-in is offered, gr.OAuthProfile (and gr.OAuthToken when
    `fn` takes `oauth_token`); `fn` gets the actor built from them. Errors are translated (guard)."""
    sig = inspect.signature(fn)
    wants_token = "oauth_token" in sig.parameters
    inputs = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("actor", "oauth_token")]
    specials = {"request": gr.Request}
    if sign_in_offered():
        specials["profile"] = Optional[gr.OAuthProfile]
        if wants_token:
            specials["oauth_token"] = Optional[gr.OAuthToken]
    params = inputs + [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=hint)
                       for name, hint in specials.items()]
    signature = sig.replace(parameters=params)
    guarded = guard(fn)

    def handler(*args, **kwargs):
        given = signature.bind(*args, **kwargs).arguments
        request, profile, token = given.pop("request", None), given.pop("profile", None), given.pop("oauth_token", None)
        extra = {"actor": actor(request, profile)}
        if wants_token:
            extra["oauth_token"] = token
        return guarded(*given.values(), **extra)

    handler.__signature__ = signature
    handler.__annotations__ = dict(specials)
    handler.__name__, handler.__qualname__, handler.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    handler.__module__ = fn.__module__
    return handler


def clicked_row_id(evt: gr.SelectData):
    """The first column of the row a visitor clicked (its id), read from the event itself (so the
    handler takes no input), or no change when the click was off the rows (a header, an emptied table)."""
    row = getattr(evt, "row_value", None)
    return row[0] if row else gr.update()
