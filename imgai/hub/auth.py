"""Who is signed in, which token an action uses, and how a token reaches a job's worker.

Locally the token is `HF_TOKEN` or the cached `huggingface-cli login`. On a Space, an action uses
the token of the visitor who clicked (`gr.OAuthToken`, passed in by the UI) and never the Space's
own token. A token is never logged, stored in the registry or a job record, written into a card,
or shown in an error: a job gets it through a 0600 file that the worker deletes on first read.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import on_space, paths
from ..errors import HubAccessError, UnsafeFileError
from .client import api, hub_status, translate

Token = str | bool | None   # str: this token; None: the local login; False: anonymous


def visitor_token(oauth_token: str | None) -> Token:
    """The token for an action a UI visitor asked for: theirs when signed in; in a public app (a
    Space, a share link, IMGAI_PUBLIC=1) anonymous otherwise (never the machine's own token, which
    would show strangers its owner's private repos); locally, the local login."""
    from ..access import public

    if oauth_token:
        return oauth_token
    return False if public() else None


def local_token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def token_source() -> str | None:
    from huggingface_hub import constants

    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "HF_TOKEN"
    if Path(constants.HF_TOKEN_PATH).is_file():
        return "cached login"
    return None


def require_token(token: Token, *, action: str) -> str:
    """A usable token for a write, or a clear refusal."""
    if isinstance(token, str) and token:
        return token
    if token is None:
        found = local_token()
        if found:
            return found
    raise HubAccessError(f"cannot {action}: not signed in to the Hugging Face Hub; {_how_to_sign_in()}")


def _how_to_sign_in() -> str:
    """How the person reading this signs in: the button on a Space; a visitor of another public app
    cannot (the owner's HF_TOKEN is no advice for them); the owner at their own machine sets a token."""
    from ..access import public

    if on_space():
        return "sign in with the Hugging Face button"
    if public():
        return "this app offers no sign-in"
    return "set HF_TOKEN or run `huggingface-cli login`"


@dataclass(frozen=True)
class LoginStatus:
    signed_in: bool
    name: str | None
    source: str | None        # "visitor", "HF_TOKEN", "cached login"
    can_write: bool | None    # None when the token's role does not say (fine-grained tokens)
    message: str              # one line: "signed in as NAME" or why not

    def to_dict(self) -> dict:
        return asdict(self)


def whoami(token: Token = None) -> LoginStatus:
    """`imgai hub whoami`: the account behind `token` (None: the local login)."""
    source = "visitor" if isinstance(token, str) and token else token_source() if token is None else None
    if token is False or (token is None and source is None):
        return LoginStatus(False, None, None, None, f"not signed in ({_how_to_sign_in()})")
    status = hub_status()
    if not status.online:
        return LoginStatus(False, None, source, None, f"not checked: the Hub is unreachable (a token is set via {source})")
    try:
        info = api().whoami(token=token if isinstance(token, str) else None)
    except Exception as exc:
        code = getattr(getattr(exc, "response", None), "status_code", None)
        if code == 401:
            return LoginStatus(False, None, source, None, f"not signed in: the token from {source} is invalid or expired")
        err = translate(exc, action="check the login with")
        if err is None:
            raise
        return LoginStatus(False, None, source, None, f"not signed in: {err}")
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role")
    can_write = True if role in ("write", "admin") else False if role == "read" else None
    name = info.get("name")
    rights = {True: "can push", False: "read-only token", None: "fine-grained token"}[can_write]
    return LoginStatus(True, name, source, can_write, f"signed in as {name} ({rights}, via {source})")


# -- handing a token to a job's worker ----------------------------------------------------

def _secrets_dir() -> Path:
    d = paths().tmp / "secrets"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def hand_over(token: str) -> str:
    """Write `token` to a fresh 0600 file for one job; returns its path (safe to put in job params)."""
    path = _secrets_dir() / f"token-{secrets.token_hex(8)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return str(path)


def take_over(path: str | None) -> str | None:
    """Read a handed-over token and delete its file at once. Only files in imgai's own secrets folder."""
    if not path:
        return None
    target = Path(path).resolve()
    if target.parent != _secrets_dir().resolve():
        raise UnsafeFileError(f"refusing to read a token from {target}: not imgai's secrets folder")
    try:
        return target.read_text().strip() or None
    except FileNotFoundError:
        raise HubAccessError("the sign-in handed to this job is gone (already used or cleaned up); "
                             "start the action again") from None
    finally:
        target.unlink(missing_ok=True)


def discard(path: str | None) -> None:
    """Delete a handed-over token that no worker will read (job cancelled while queued)."""
    if path:
        target = Path(path).resolve()
        if target.parent == _secrets_dir().resolve():
            target.unlink(missing_ok=True)
