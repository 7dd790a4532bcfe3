"""The policy's answer as a page shows it: a reason beside a greyed button, and how a public app
names a folder on the server. The rule itself is `imgai.access`; this only words it."""

from __future__ import annotations

from pathlib import Path

from .. import access
from ..access import Actor


def lock_note(why: str) -> str:
    """The policy's reason shown beside greyed buttons, as a sentence ('' when nothing is refused)."""
    return f"🔒 {why[:1].upper()}{why[1:]}." if why else ""


def locks(actor: Actor | None, actions, target=None) -> tuple[str, dict[str, bool]]:
    """Whether the policy lets this visitor take each action (on `target`, or on something new or
    not yet chosen), and the reason for the first it refuses: what a tab greys, asked of the rule
    its endpoints enforce."""
    refusals = {action: access.refused(actor, action, target) for action in actions}
    return lock_note(next((why for why in refusals.values() if why), "")), {a: not why for a, why in refusals.items()}


def shown_folder(path) -> str:
    """A folder on the server as the page names it: its path locally, only its name on a public app
    (strangers are told no path on the server)."""
    return f"{Path(path).name}/ (a folder on the server)" if access.public() else str(path)
