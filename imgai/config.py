"""Where imgai keeps its data, and the settings read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import settings


# Where a Hugging Face Space mounts its persistent storage, when the Space has bought some.
PERSISTENT_STORAGE = Path("/data")


def _default_home() -> Path:
    home = settings.get("IMGAI_HOME")
    if home is not None:
        return home
    # On a Space the app's own folder is wiped at every restart; /data survives it.
    if on_space() and PERSISTENT_STORAGE.is_dir() and os.access(PERSISTENT_STORAGE, os.W_OK):
        return PERSISTENT_STORAGE / "imgai"
    return Path("imgai_data")


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def registry(self) -> Path:
        return self.home / "registry.sqlite"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def converted(self) -> Path:
        return self.home / "converted_models"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def tmp(self) -> Path:
        return self.home / "tmp"

    def model_dir(self, model_id: str) -> Path:
        return self.models / model_id

    def ensure(self) -> "Paths":
        for p in (self.home, self.models, self.logs, self.tmp):
            p.mkdir(parents=True, exist_ok=True)
        return self


def paths() -> Paths:
    """The data folder, read from `IMGAI_HOME` each call (tests and workers change it)."""
    return Paths(_default_home().resolve()).ensure()


def on_space() -> bool:
    """Running as a Hugging Face Space: gradio's own rule (`gradio.utils.get_space`), `SYSTEM=spaces`
    and a `SPACE_ID`."""
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("SPACE_ID"))


def max_parallel_jobs() -> int:
    return settings.get("IMGAI_MAX_JOBS")


def job_niceness() -> int:
    """How much lower than the app a job's worker runs (`IMGAI_JOB_NICE`, 0–19, default 10), so a
    training run yields the cores to visitors' tag calls and page refreshes."""
    return settings.get("IMGAI_JOB_NICE")
