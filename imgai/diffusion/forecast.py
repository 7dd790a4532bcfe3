"""What a quantize run will do with each target, said before it runs and without downloading or
loading anything: skipped (unsupported), up to date (skipped unless forced), will fail (a missing
source folder, a Hub source that is neither cached nor reachable), or will run."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..words import render, term
from .keys import get_model_key
from .matrix import QuantizeRequest, plan
from .targets import SKIPPED

RUN, UP_TO_DATE, FAIL = "will run", "up to date", "will fail"
SKIP = SKIPPED      # a target the run skips is forecast in the word its result will carry


@dataclass(frozen=True)
class Forecast:
    name: str
    verdict: str        # RUN | SKIP | UP_TO_DATE | FAIL
    reason: str = ""

    def line(self) -> str:
        return render(f"`{self.name}`: **{self.verdict}**" + (f" — {self.reason}" if self.reason else ""))


@functools.lru_cache(maxsize=16)
def _local_fingerprint(folder: str, stamp: tuple) -> str:
    from .source import fingerprint

    return fingerprint(Path(folder))


def _cached_hub_revision(spec: str) -> str | None:
    """The commit of a Hub pipeline in the local HF cache, without any network call (None: not cached)."""
    from huggingface_hub import snapshot_download

    repo_id, _, revision = spec.partition("@")
    try:
        return Path(snapshot_download(repo_id, revision=revision or None, local_files_only=True)).name
    except (OSError, ValueError):     # not cached (LocalEntryNotFoundError), or not a Hub id
        return None


def _source_revision(key: str, spec: str | None) -> tuple[str | None, str]:
    """(revision, '') when the source is at hand, or (None, why it will fail)."""
    from ..hub.client import hub_status
    from .source import HUB_ID

    spec = (spec or get_model_key(key).repo_id).strip()
    local = Path(spec).expanduser()
    if local.exists() or spec.startswith((".", "/", "~")):
        if not (local / "model_index.json").is_file():
            return None, f"the source folder {spec} does not exist or has no model_index.json"
        files = [p.stat() for p in local.rglob("*") if p.is_file()]
        stamp = (len(files), max((s.st_mtime_ns for s in files), default=0), sum(s.st_size for s in files))
        return _local_fingerprint(str(local.resolve()), stamp), ""
    if not HUB_ID.match(spec):
        return None, f"the source {spec!r} is neither a folder nor a Hub id like org/name"
    revision = _cached_hub_revision(spec)
    if revision is None and not hub_status().online:
        return None, (f"{spec} is not in the local Hugging Face cache and the Hub cannot be reached; give "
                      f"{term('source-one')}")
    return revision, ""


def forecast(request: QuantizeRequest) -> list[Forecast]:
    from .info import read_info, settings_for

    found = []
    for t in plan(request):
        if t.skip:
            found.append(Forecast(t.name, SKIP, t.skip))
            continue
        revision, problem = _source_revision(t.key, request.sources.get(t.key))
        if problem:
            found.append(Forecast(t.name, FAIL, problem))
            continue
        info = read_info(Path(request.folder) / t.name) or {}
        made_from = info.get("source", {}).get("revision")
        settings = settings_for(t.key, t.backend, t.quantization,
                                request.check.resolve(get_model_key(t.key), t.quantization))
        if revision and made_from == revision and info.get("settings") == settings and info.get("check", {}).get("passed"):
            found.append(Forecast(t.name, RUN if request.force else UP_TO_DATE,
                                  "redone: forced" if request.force else
                                  f"made from this source already; {term('force')} redoes it"))
        else:
            found.append(Forecast(t.name, RUN))
    return found
