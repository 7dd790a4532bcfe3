"""The `quantize` job kind: a whole run (`QuantizeRequest`) in a worker subprocess.

Each finished target is recorded as a job event carrying its result (`data["target"]`), so the
CLI and the UI can show the summary whether the job succeeded or failed; the job fails when any
target failed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..job_context import JobContext
from .. import access, jobs
from ..access import Actor
from ..errors import ConfigError, ConversionError
from .matrix import QuantizeRequest, run
from .targets import FAILED, STAGING_PREFIX, TargetResult

KIND = "quantize"


def submit(request: QuantizeRequest, *, actor: Actor | None = None) -> jobs.Job:
    """Queue a quantize run. Only the local owner may name local folders, force past the
    memory/disk refusal, or push from the job (a worker pushes with the machine's token, which on a
    Space is the Space's own: others convert, then push with their own sign-in)."""
    actor = access.check(actor, "quantize")
    if not actor.can("server.paths"):
        from .source import HUB_ID

        local = {k: v for k, v in request.sources.items() if not HUB_ID.match(v)}
        if local:
            raise ConfigError("on a public app a source must be a Hub id like org/name, not "
                              + ", ".join(f"{k}={v!r}" for k, v in local.items()))
        if request.force:
            raise ConfigError("force (skip the memory/disk refusal) is for the app's owner at the console")
        if request.push:
            raise ConfigError("on a public app, convert first and then use Push to Hub, which pushes with "
                              "your own sign-in")
    return jobs.submit(KIND, request.to_params(), subject=request.describe(), owner=actor.owner)


def quantize_job(ctx: JobContext) -> dict:
    request = QuantizeRequest.from_params(ctx.params)

    def on_result(result: TargetResult) -> None:
        text = f"{result.name}: {result.status}" + (f" ({result.reason})" if result.reason else "")
        ctx.event(text, level="error" if result.status == FAILED else "info", data={"target": result.to_dict()})

    results = run(request, on_progress=ctx.progress, on_result=on_result,
                  on_warning=lambda message: ctx.event(message, level="warning"), run_id=ctx.id)
    failed = [r for r in results if r.status == FAILED]
    if failed:
        raise ConversionError(f"{len(failed)} of {len(results)} targets failed: " +
                              "; ".join(f"{r.name}: {r.reason}" for r in failed))
    return {"targets": [r.to_dict() for r in results]}


def abort_job(job: jobs.Job, reason: str) -> None:
    """A run died or was cancelled: remove the staging folders it left (named with the job id)."""
    folder = Path(job.params.get("output_dir") or "")
    if not folder.is_dir():
        return
    for leftover in folder.glob(f"{STAGING_PREFIX}*-{job.id}"):
        shutil.rmtree(leftover, ignore_errors=True)


def target_results(job_id: str) -> list[dict]:
    """The per-target results a quantize job has recorded so far, in order."""
    return [e["data"]["target"] for e in jobs.events(job_id) if e.get("data") and "target" in e["data"]]
