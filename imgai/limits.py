"""The limits table of imgai/quotas.py: each limit has a default and an environment variable, and a
refusal names both. A leaf (errors only), so the job system reads its job limits here without
importing the quota checks that read the registry."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import ConfigError, QuotaExceededError

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30}


@dataclass(frozen=True)
class Limit:
    env: str
    default: str
    what: str
    unit: str = "count"      # count | bytes | seconds

    def value(self) -> int:
        raw = os.environ.get(self.env, "").strip() or self.default
        if self.unit == "bytes":
            m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", raw.lower())
            if m:
                return int(float(m[1]) * _UNITS[m[2] or ""])
        elif raw.isdigit():
            return int(raw)
        raise ConfigError(f"{self.env}={raw!r} is not a valid {self.what} limit; use e.g. {self.default}")

    def show(self, value: int | None = None) -> str:
        value = self.value() if value is None else value
        return human(value) if self.unit == "bytes" else f"{value} s" if self.unit == "seconds" else str(value)

    def refuse(self, detail: str) -> QuotaExceededError:
        return QuotaExceededError(f"{detail}: the limit is {self.show()} ({self.what}; set by {self.env}, "
                                  f"default {self.default})")


LIMITS = {
    "running_jobs": Limit("IMGAI_QUOTA_RUNNING_JOBS", "1", "running jobs per visitor"),
    "queued_jobs": Limit("IMGAI_QUOTA_QUEUED_JOBS", "3", "queued jobs per visitor"),
    "visitor_disk": Limit("IMGAI_QUOTA_DISK", "2GB", "disk per visitor", "bytes"),
    "download_size": Limit("IMGAI_QUOTA_DOWNLOAD", "1GB", "size of one Hub download", "bytes"),
    "free_disk": Limit("IMGAI_MIN_FREE_DISK", "2GB", "free disk a public app keeps", "bytes"),
    "train_epochs": Limit("IMGAI_QUOTA_EPOCHS", "20", "training epochs per job", "count"),
    "train_seconds": Limit("IMGAI_QUOTA_TRAIN_SECONDS", "1800", "training wall time per job", "seconds"),
    "tag_files": Limit("IMGAI_QUOTA_TAG_FILES", "64", "images per tag call", "count"),
    "tag_bytes": Limit("IMGAI_QUOTA_TAG_BYTES", "200MB", "bytes of images per tag call", "bytes"),
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
