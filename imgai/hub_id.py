"""The syntax of a Hub id, `org/name[@revision]`: one pattern for every place that takes one
(models to add, diffusion sources, training datasets, push targets, the UI's checks)."""

from __future__ import annotations

import re

from .errors import ConfigError

HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.\-]*/[\w.\-]+)(?:@(?P<rev>[\w.\-/]+))?$")


def split_revision(spec: str) -> tuple[str, str | None]:
    """"org/name@rev" → ("org/name", "rev"); refuses anything that is not a Hub id."""
    from .words import term

    if not (spec or "").strip():
        raise ConfigError(f"no model chosen: give {term('repo')}")
    m = HUB_ID.match(spec.strip())
    if not m:
        raise ConfigError(f"the id {spec!r} is not a Hub model id like 'org/name' or 'org/name@revision'")
    return m["repo"], m["rev"]
