"""The limits table of imgai/quotas.py: each limit is a setting (imgai/settings.py), and a refusal
names its variable and default. A leaf (errors and settings only), so the job system reads its job limits here without
importing the quota checks that read the registry."""

from __future__ import annotations

from dataclasses import dataclass

from . import settings
from .errors import QuotaExceededError


@dataclass(frozen=True)
class Limit:
    """A limit is a setting (imgai/settings.py: its variable, default, unit and noun)."""
    env: str

    @property
    def setting(self) -> settings.Setting:
        return settings.setting(self.env)

    @property
    def default(self) -> str:
        return self.setting.default

    @property
    def what(self) -> str:
        return self.setting.what

    @property
    def unit(self) -> str:
        return self.setting.kind      # count | bytes | seconds

    def value(self) -> int:
        return self.setting.read()

    def show(self, value: int | None = None) -> str:
        value = self.value() if value is None else value
        return human(value) if self.unit == settings.BYTES else f"{value} s" if self.unit == settings.SECONDS \
            else str(value)

    def refuse(self, detail: str) -> QuotaExceededError:
        return QuotaExceededError(f"{detail}: the limit is {self.show()} ({self.what}; set by {self.env}, "
                                  f"default {self.default})")


LIMITS = {
    "running_jobs": Limit("IMGAI_QUOTA_RUNNING_JOBS"),
    "queued_jobs": Limit("IMGAI_QUOTA_QUEUED_JOBS"),
    "visitor_disk": Limit("IMGAI_QUOTA_DISK"),
    "download_size": Limit("IMGAI_QUOTA_DOWNLOAD"),
    "free_disk": Limit("IMGAI_MIN_FREE_DISK"),
    "train_epochs": Limit("IMGAI_QUOTA_EPOCHS"),
    "train_seconds": Limit("IMGAI_QUOTA_TRAIN_SECONDS"),
    "tag_files": Limit("IMGAI_QUOTA_TAG_FILES"),
    "tag_bytes": Limit("IMGAI_QUOTA_TAG_BYTES"),
}


def limit(name: str) -> int:
    return LIMITS[name].value()


def human(n: int | float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_new_job(owner: str | None, queued: int) -> None:
    """A visitor may have `queued_jobs` waiting at once (and `running_jobs` running: the dispatcher
    keeps the rest queued). Shared work (owner None) is not limited."""
    if owner is not None and queued >= limit("queued_jobs"):
        raise LIMITS["queued_jobs"].refuse(f"you already have {queued} jobs queued; wait for one to finish "
                                           "or cancel one")
