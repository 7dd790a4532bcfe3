"""Who may do what: the actor behind a call, and one table of (action × role).

Every imgai function that changes state takes `actor=` (keyword-only) and calls
`check(actor, action, target)` before it touches anything; a refusal is a `PermissionDeniedError`
whose message says what is needed. The UI builds the actor from the request (ui/common.actor);
the CLI, tests and job workers are the local owner (`actor=None` means the console).

Roles:
    local      `python app.py` without a share link, every CLI command: everything.
    admin      on a public app, the Space's author (`SPACE_AUTHOR_NAME`) or a name in
               `IMGAI_ADMINS`, signed in with Hugging Face: the shared catalogue and every job.
    visitor    signed in with Hugging Face: tag with shared models; their own models, data, jobs
               and files, within quotas (imgai/quotas.py).
    anonymous  a browser session (or any API client): tag with shared models, browse the Hub.

Things carry an owner: None is shared (the catalogue), else the visitor's Hugging Face username,
or "session:<hash>" for an anonymous page's files.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass

from . import settings
from .config import on_space
from .errors import PermissionDeniedError

LOCAL, ADMIN, VISITOR, ANONYMOUS = "local", "admin", "visitor", "anonymous"
ROLES = (LOCAL, ADMIN, VISITOR, ANONYMOUS)

# How far a role's permission reaches.
ANY = "any"   # every target, shared or anyone's
USE = "use"   # shared targets and the actor's own (use them, never change a shared one)
OWN = "own"   # only the actor's own targets (and new ones, which become theirs)
NO = "no"


@dataclass(frozen=True)
class Rule:
    verb: str        # completes "sign in with Hugging Face to …"
    admin: str
    visitor: str
    anonymous: str
    local: str = ANY


# THE policy. Every mutating imgai function names one of these actions.
POLICY: dict[str, Rule] = {
    "tag":             Rule("tag images",                         ANY, USE, USE),
    "hub.browse":      Rule("search the Hub",                     ANY, ANY, ANY),
    "server.paths":    Rule("read folders on the server",         NO,  NO,  NO),
    "models.add":      Rule("add a model",                        ANY, OWN, NO),
    "hub.download":    Rule("download a model from the Hub",      ANY, OWN, NO),
    "models.convert":  Rule("convert a model",                    ANY, OWN, NO),
    "models.validate": Rule("validate a model",                   ANY, OWN, NO),
    "models.preprocess": Rule("confirm or edit a model's preprocessing", ANY, OWN, NO),
    "models.enable":   Rule("enable a model",                     ANY, OWN, NO),
    "models.disable":  Rule("disable a model",                    ANY, OWN, NO),
    "models.default":  Rule("choose the default model",           ANY, NO,  NO),
    "models.remove":   Rule("remove a model",                     ANY, OWN, NO),
    "models.quantize": Rule("quantize a model",                   ANY, OWN, NO),
    "models.push":     Rule("push a model to the Hub",            ANY, USE, NO),
    "quantize":        Rule("quantize diffusion pipelines",       ANY, NO,  NO),
    "quantize.push":   Rule("push a quantized pipeline",          ANY, NO,  NO),
    "train.create":    Rule("make a model to train",              ANY, OWN, NO),
    "train.start":     Rule("train a model",                      ANY, OWN, NO),
    "train.resume":    Rule("resume a training job",              ANY, OWN, NO),
    "train.retrain":   Rule("retrain a model",                    ANY, OWN, NO),
    "train.download":  Rule("download a trained model",           ANY, OWN, NO),
    "data.create":     Rule("create a data pipeline",             ANY, OWN, NO),
    "data.use":        Rule("train on a data pipeline",           ANY, USE, NO),
    "data.remove":     Rule("remove a data pipeline",             ANY, OWN, NO),
    "jobs.cancel":     Rule("cancel a job",                       ANY, OWN, NO),
    "files.read":      Rule("download result files",              ANY, OWN, OWN),
    "library":         Rule("tag, review and export a photo library (folders on the server)", ANY, NO, NO),
}
ACTIONS = tuple(POLICY)


@dataclass(frozen=True)
class Actor:
    role: str
    username: str | None = None   # the Hugging Face username (admin, visitor)
    session: str | None = None    # the page's session hash (anonymous)

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; one of {', '.join(ROLES)}")

    @property
    def owner(self) -> str | None:
        """The owner stamped on what this actor makes: None (shared) for the local owner and admins."""
        if self.role in (LOCAL, ADMIN):
            return None
        if self.role == VISITOR:
            return self.username
        return f"session:{self.session}"

    @property
    def sees_all(self) -> bool:
        return self.role in (LOCAL, ADMIN)

    @property
    def limited(self) -> bool:
        """Quotas apply (a public app's visitors, signed in or not)."""
        return self.role in (VISITOR, ANONYMOUS)

    def can(self, action: str, target=None) -> bool:
        return not refused(self, action, target)

    def __str__(self) -> str:
        return {LOCAL: "the local owner", ADMIN: f"admin {self.username}", VISITOR: str(self.username),
                ANONYMOUS: "an anonymous visitor"}[self.role]


LOCAL_OWNER = Actor(LOCAL)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def public() -> bool:
    """Strangers can reach this app: on a Space (gradio's rule: `SYSTEM=spaces` and `SPACE_ID`),
    with `IMGAI_PUBLIC=1`, or launched with a share link (`GRADIO_SHARE=true`)."""
    return on_space() or settings.get("IMGAI_PUBLIC") or _truthy("GRADIO_SHARE")


def admins() -> frozenset[str]:
    """Hugging Face usernames that manage the shared catalogue (compared case-insensitively)."""
    names = [os.environ.get("SPACE_AUTHOR_NAME", ""), *settings.get("IMGAI_ADMINS")]
    return frozenset(n.strip().lower() for n in names if n.strip())


def actor_for(*, username: str | None, session: str | None) -> Actor:
    """The actor of a request: locally the local owner; in a public app the signed-in Hugging Face
    user (admin or visitor), else the page's session (a fresh one when there is none)."""
    if not public():
        return LOCAL_OWNER
    if username:
        return Actor(ADMIN if username.lower() in admins() else VISITOR, username=username)
    return Actor(ANONYMOUS, session=session or secrets.token_hex(8))


def resolve(actor: Actor | None) -> Actor:
    """`actor=None` is the console: the local owner (CLI, tests, job workers)."""
    return LOCAL_OWNER if actor is None else actor


def owner_of(target) -> str | None:
    """The owner of a model, job, data pipeline or file record (anything with `.owner`)."""
    return getattr(target, "owner", None)


def _describe(target) -> str:
    """"model 'x'", "job 'y'", "data pipeline 'z'"."""
    kind = re.sub(r"(?<!^)([A-Z])", r" \1", type(target).__name__).lower()
    for attr in ("id", "name"):
        value = getattr(target, attr, None)
        if value:
            return f"{kind} {value!r}"
    return kind


def check(actor: Actor | None, action: str, target=None) -> Actor:
    """Allow, or raise PermissionDeniedError saying what is needed. Returns the (resolved) actor.
    `target`: the thing acted on (its `.owner` decides USE/OWN), or None for something new."""
    actor = resolve(actor)
    try:
        rule = POLICY[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; add it to imgai.access.POLICY") from None
    scope = getattr(rule, actor.role)
    if scope == ANY:
        return actor
    if scope == NO:
        raise PermissionDeniedError(refusal(actor, rule))
    owner = owner_of(target) if target is not None else actor.owner
    if owner is not None and owner == actor.owner:
        return actor
    if owner is None and scope == USE:
        return actor
    if owner is None:
        raise PermissionDeniedError(f"cannot {rule.verb}: {_describe(target)} is shared, and only the Space's "
                                    "owner or an admin may change what is shared; use your own")
    raise PermissionDeniedError(f"cannot {rule.verb}: {_describe(target)} belongs to another user; you may "
                                "act only on your own")


def refused(actor: Actor | None, action: str, target=None) -> str:
    """Why `actor` may not do `action` (to `target`), or "" when they may: what a page shows beside
    a greyed button. The same rule `check` enforces, so the page and the endpoint never disagree."""
    try:
        check(actor, action, target)
    except PermissionDeniedError as exc:
        return str(exc)
    return ""


def refusal(actor: Actor, rule: Rule) -> str:
    if actor.role == ANONYMOUS and rule.visitor != NO:
        if on_space():
            return f"sign in with Hugging Face to {rule.verb}"
        return f"visitors cannot {rule.verb} here: this app offers no sign-in (run imgai on your own machine to do it)"
    if rule.admin != NO:
        return f"only the Space's owner or an admin (IMGAI_ADMINS) can {rule.verb}"
    return f"only the app's owner, running imgai on their own machine, can {rule.verb}"


def visible(actor: Actor | None, items):
    """The items an actor may see: everything for the local owner and admins, else the shared
    ones and their own."""
    actor = resolve(actor)
    if actor.sees_all:
        return list(items)
    return [i for i in items if owner_of(i) is None or owner_of(i) == actor.owner]
