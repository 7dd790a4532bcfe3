"""The stage a running training job reports, "epoch k/n": written by `epoch_stage` and read back
by `parse_epoch_stage` (the job views, the CLI's progress bars and the app all read it here)."""

from __future__ import annotations

import re

_EPOCH_STAGE = re.compile(r"^epoch (\d+)/(\d+)$")


def epoch_stage(epoch: int, epochs: int) -> str:
    return f"epoch {epoch}/{epochs}"


def parse_epoch_stage(stage: str | None) -> tuple[int, int] | None:
    """(k, n) from "epoch k/n", or None for any other stage ("reading data", "saving model", …)."""
    m = _EPOCH_STAGE.match(stage or "")
    return (int(m[1]), int(m[2])) if m else None
