"""What to do next, said where the user is: for a model (the one step that gets it tagging), and
for the demo (being prepared, ready, removed). The app and the CLI show these words as they are
(rendered for their place by imgai.words)."""

from __future__ import annotations

from dataclasses import dataclass

from . import registry
from .words import render, term


def next_step(model: registry.Model) -> str:
    """One sentence: why this model does not tag yet and the step that fixes it ('' when it tags)."""
    return render(_next_step(model))


def _next_step(model: registry.Model) -> str:
    if model.training not in (None, registry.TRAINED):
        return f"not trained yet: train it first ({term('train')}); the trained model can then be converted"
    if model.conversion == registry.CONVERTING:
        return "converting: it is offered in Tag as soon as the conversion ends"
    if model.type == registry.PYTORCH:
        failed = model.conversion == registry.FAILED
        return (f"{'the last conversion failed; ' if failed else ''}convert it to ONNX ({term('convert')}); "
                "a first conversion also validates and enables it")
    if not model.valid:
        return "validation has not passed: validate it again, or remove it"
    if not model.enabled:
        return f"converted and validated but disabled: enable it to tag with it ({term('enable')})"
    if not model.default:
        return f"ready to tag; {term('set-default')} makes it the one used when no model is named"
    return ""


# the demo's states, the words DemoStatus.state takes (the Start and Convert tabs read them)
DEMO_OFF, DEMO_PREPARING, DEMO_READY, DEMO_FAILED, DEMO_ABSENT = "off", "preparing", "ready", "failed", "absent"
DEMO_STATES = (DEMO_OFF, DEMO_PREPARING, DEMO_READY, DEMO_FAILED, DEMO_ABSENT)
RESTORABLE = (DEMO_ABSENT, DEMO_FAILED)   # where "Restore the demo model" is offered


@dataclass(frozen=True)
class DemoStatus:
    state: str              # one of DEMO_STATES
    progress: float = 0.0
    stage: str = ""
    message: str = ""
    eta_s: float | None = None   # preparing: about how many seconds are left (None: too early to tell)


def demo_status() -> DemoStatus:
    status = _demo_status()
    return DemoStatus(status.state, status.progress, status.stage, render(status.message), status.eta_s)


def _eta(job) -> float | None:
    """Seconds left of a running job at its pace so far (None before it has measurably moved)."""
    import time

    if not job.started_at or job.progress < 0.05:
        return None
    elapsed = time.time() - job.started_at
    return max(1.0, elapsed / job.progress * (1 - job.progress))


def _demo_status() -> DemoStatus:
    from . import jobs
    from .demo import MODEL_ID, NAME, demo_disabled, preparing

    running = preparing()
    if running:
        return DemoStatus(DEMO_PREPARING, running.progress, running.stage or running.state,
                          f"Preparing the demo model ({NAME}): {running.progress:.0%} — "
                          f"{running.stage or running.state}. It tags as soon as this ends (under a minute).",
                          _eta(running))
    try:
        model = registry.get(MODEL_ID)
    except Exception:
        model = None
    if model is not None and model.can_tag:
        return DemoStatus(DEMO_READY, 1.0, message=f"The demo model **{NAME}** is ready: tag a photo with it.")
    last = jobs.list_jobs(kind="demo", limit=1)
    if last and last[0].state == jobs.FAILED:
        return DemoStatus(DEMO_FAILED, message=f"Preparing the demo failed: {last[0].error}. Try again with "
                                            f"{term('restore-demo')}.")
    if demo_disabled():
        return DemoStatus(DEMO_OFF, message="The demo model is switched off here (IMGAI_NO_DEMO).")
    if model is not None:
        return DemoStatus(DEMO_ABSENT, message=f"The demo model is not ready to tag: {next_step(model)}.")
    return DemoStatus(DEMO_ABSENT, message=f"The demo model was removed; bring it back with {term('restore-demo')}.")
