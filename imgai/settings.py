"""Every `IMGAI_*` environment variable, in one table: its type, its default and one line of help.
Code reads a setting with `settings.get(NAME)`, which parses it the one way its type says and refuses
a bad value by naming the variable, the value and what would do (a typo is never quietly "on").
README's table of settings is generated from SETTINGS (tests/readme_tables.py).

Read at each call, not at import: tests and job workers change the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

FLAG, COUNT, SECONDS, BYTES, PATH, NAMES, TEXT = "flag", "count", "seconds", "bytes", "path", "names", "text"
KINDS = (FLAG, COUNT, SECONDS, BYTES, PATH, NAMES, TEXT)
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?")


def parse_bytes(text: str) -> int | None:
    """'200MB', '1.5 GiB', '1000' → bytes; None when it is no size."""
    m = _SIZE.fullmatch(text.strip().lower())
    return int(float(m[1]) * UNITS[m[2] or ""]) if m else None


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str                 # one of KINDS
    default: str              # as it would be written in the environment ('' = not set)
    help: str                 # one line, for README and errors
    what: str = ""            # a limit's noun ("disk per visitor"), named when a value is refused
    minimum: int | None = None
    maximum: int | None = None
    internal: bool = False    # set by imgai itself or its tests, not by a user

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    def raw(self) -> str:
        """The value as set in the environment, else the default."""
        value = os.environ.get(self.name, "")
        return value if value.strip() else self.default

    def read(self):
        """The typed value: bool (flag), int (count, seconds, bytes), Path or None (path), a tuple of
        names, or text. A bad value raises ConfigError naming the variable."""
        raw = self.raw().strip()
        if self.kind == FLAG:
            if raw.lower() in TRUE + FALSE:
                return raw.lower() in TRUE
            raise ConfigError(f"{self.name}={raw!r} must be one of 1, true, yes, on (on) or 0, false, no, off "
                              f"(off); default {self.default or 'off'}")
        if self.kind in (COUNT, SECONDS):
            if raw.isdigit() and (self.minimum is None or int(raw) >= self.minimum) \
                    and (self.maximum is None or int(raw) <= self.maximum):
                return int(raw)
            bounds = (f"from {self.minimum} to {self.maximum}" if self.maximum is not None
                      else f"of {self.minimum or 0} or more")
            raise ConfigError(f"{self.name}={raw!r} must be a whole number {bounds} (default {self.default})")
        if self.kind == BYTES:
            value = parse_bytes(raw)
            if value is None:
                raise ConfigError(f"{self.name}={raw!r} is not a valid {self.what or 'size'} limit; use e.g. "
                                  f"{self.default} (B, KB, MB, GB, TB, KiB, MiB, GiB)")
            return value
        if self.kind == PATH:
            return Path(raw).expanduser() if raw else None
        if self.kind == NAMES:
            return tuple(n.strip() for n in raw.split(",") if n.strip())
        return raw


def _settings(*items: Setting) -> dict[str, Setting]:
    return {s.name: s for s in items}


SETTINGS = _settings(
    Setting("IMGAI_HOME", PATH, "", "the data folder (default ./imgai_data; /data/imgai on a Space with persistent "
                                    "storage)"),
    Setting("IMGAI_TEMPLATES", PATH, "", "a folder of model-card templates to use instead of templates/ (an "
                                         "installed imgai: its own copy)"),
    Setting("IMGAI_NO_DEMO", FLAG, "0", "1 keeps the demo model off: it is not registered or prepared at start"),
    Setting("IMGAI_PUBLIC", FLAG, "0", "1 treats the app as public (as on a Space or a share link): strangers' rules"),
    Setting("IMGAI_ADMINS", NAMES, "", "Hugging Face usernames, comma-separated, that manage a public app's "
                                       "shared models and jobs"),
    Setting("IMGAI_MAX_JOBS", COUNT, "1", "jobs that run at once (each in its own worker process)", minimum=1),
    Setting("IMGAI_JOB_NICE", COUNT, "10", "how much lower than the app a job's worker runs (0–19)",
            minimum=0, maximum=19),
    Setting("IMGAI_WARM_WORKER", FLAG, "1", "1 forks conversion, training and quantization jobs from a process that "
                                            "imported torch and the exporters once (~10 s saved per job); 0 starts "
                                            "a fresh Python for each"),
    Setting("IMGAI_WARM_IDLE", SECONDS, "600", "seconds that warm process waits for the next job before it exits",
            minimum=1),
    Setting("IMGAI_FILES_TTL", SECONDS, "10800", "seconds a visitor's result files and uploads are kept",
            minimum=0),
    Setting("IMGAI_MAX_UPLOAD", BYTES, "50MB", "the largest file the app accepts in an upload",
            what="upload size"),
    Setting("IMGAI_MAX_ZIP_BYTES", BYTES, "4GiB", "the most a training-data zip may expand to",
            what="unpacked zip size"),
    Setting("IMGAI_MAX_ZIP_FILES", COUNT, "200000", "the most entries a training-data zip may hold", minimum=0),
    Setting("IMGAI_QUOTA_RUNNING_JOBS", COUNT, "1", "a public app: running jobs per visitor",
            what="running jobs per visitor", minimum=0),
    Setting("IMGAI_QUOTA_QUEUED_JOBS", COUNT, "3", "a public app: queued jobs per visitor",
            what="queued jobs per visitor", minimum=0),
    Setting("IMGAI_QUOTA_DISK", BYTES, "2GB", "a public app: disk per visitor", what="disk per visitor"),
    Setting("IMGAI_QUOTA_DOWNLOAD", BYTES, "1GB", "a public app: size of one Hub download",
            what="size of one Hub download"),
    Setting("IMGAI_MIN_FREE_DISK", BYTES, "2GB", "a public app: free disk it keeps",
            what="free disk a public app keeps"),
    Setting("IMGAI_QUOTA_EPOCHS", COUNT, "20", "a public app: training epochs per job",
            what="training epochs per job", minimum=0),
    Setting("IMGAI_QUOTA_TRAIN_SECONDS", SECONDS, "1800", "a public app: training wall time per job",
            what="training wall time per job", minimum=0),
    Setting("IMGAI_QUOTA_TAG_FILES", COUNT, "64", "a public app: images per tag call",
            what="images per tag call", minimum=0),
    Setting("IMGAI_QUOTA_TAG_BYTES", BYTES, "200MB", "a public app: bytes of images per tag call",
            what="bytes of images per tag call"),
    Setting("IMGAI_JOB_KINDS", TEXT, "", "job kinds a process registered, handed to its workers (JSON)",
            internal=True),
    Setting("IMGAI_TEST_STOP_AT", TEXT, "", "tests only: a training worker stops itself at this point",
            internal=True),
)


def setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"no setting {name!r}; known: {', '.join(SETTINGS)}") from None


def get(name: str):
    """The value of setting `name`, typed and checked (see Setting.read)."""
    return setting(name).read()
