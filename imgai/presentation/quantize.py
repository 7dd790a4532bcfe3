"""The Quantize tab and `imgai quantize` in words: the form read into a request (with the check
size parsed once for both), the plan of a run, a run's status and its check scores."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import jobs as job_store
from ..access import Actor
from ..errors import ConfigError, ImgaiError
from ..words import plain
from .jobs import RUN_COLUMNS, job_rows, selected_job
from .locks import locks, shown_folder

CHECK_SIZE = re.compile(r"\s*(\d+)\s*(?:x\s*(\d+))?\s*")


def parse_check_size(text: str | None) -> tuple[int, int] | None:
    """'512x512', '512 x 768' or one number '512' → (width, height); empty → None (the key's default)."""
    if text is None or not str(text).strip():
        return None
    m = CHECK_SIZE.fullmatch(str(text).lower())
    if not m:
        raise ConfigError(f"check size must be WIDTHxHEIGHT like 512x512, or one number, got {text!r}")
    return int(m[1]), int(m[2] or m[1])


def quantize_request(models, source, backend, quantization, force, check_steps, check_size, push, private,
                     device="auto"):
    """The Quantize form (its fields in order) as a QuantizeRequest; a bad field is a ConfigError."""
    from ..diffusion.matrix import QuantizeRequest, parse_sources

    if not models:
        raise ConfigError("pick at least one model key")
    keys = tuple(models)
    return QuantizeRequest(model=keys, backend=backend, quantization=quantization,
                           sources=parse_sources([source.strip()] if source and source.strip() else None, keys),
                           force=bool(force), push=(push or "").strip() or None, private=bool(private),
                           check_steps=int(check_steps) if check_steps else None,
                           check_size=parse_check_size(check_size), device=device or "auto")


@dataclass(frozen=True)
class QuantizePlan:
    """What a run of the form would do, whether the Quantize button may start it, and why not."""
    text: str
    can_start: bool
    note: str = ""


def quantize_plan(*form, actor: Actor | None = None) -> QuantizePlan:
    """The plan of the form (each target: run, skip, up to date, or fail and why), with Quantize
    greyed when the policy refuses this visitor, the form is bad, or every target will fail. A bad
    field is said here, not raised, since the page asks on every edit."""
    from ..diffusion.forecast import FAIL, forecast

    lock, allowed = locks(actor, ("quantize",))
    try:
        request = quantize_request(*form)
        found = forecast(request)
    except ImgaiError as exc:
        return QuantizePlan(f"⚠️ {exc}", False, lock or "Fix the form above to start a run.")
    text = (f"Output folder: `{shown_folder(request.folder)}` — device {request.resolved_device}\n\n"
            + "\n".join(f"- {f.line()}" for f in found))
    if not allowed["quantize"]:
        return QuantizePlan(text, False, lock)
    if found and all(f.verdict == FAIL for f in found):
        return QuantizePlan(text, False, "Every target will fail (see the plan above), so there is nothing to "
                                         "start: fix what the plan names first.")
    return QuantizePlan(text, True)


def plan_text(*form) -> str:
    """The plan of the form in words (quantize_plan's text)."""
    return quantize_plan(*form).text


def progress_words(job: job_store.Job, results: list[dict]) -> str:
    """A run's progress as what was done: its percentage while it runs, then how many targets
    ended done (a run whose every target failed is not "100 %")."""
    if not job.done:
        return f"{job.progress:.0%}"
    from ..diffusion.targets import DONE

    finished = sum(1 for r in results if r.get("status") == DONE)
    return f"{finished} of {len(results)} targets done" if results else f"no target done ({job.state})"


def run_status(job_id: str | None, actor: Actor | None) -> tuple[str, list[list]]:
    """A run's progress in one paragraph, and its per-target result rows so far."""
    from ..diffusion.job import target_results
    from ..diffusion.matrix import summary_rows

    if not job_id:
        return "No run yet: set up a run above and press **Quantize**.", []
    try:
        job = job_store.get(job_id, actor=actor)
    except ImgaiError as exc:  # an unknown id typed by hand
        return f"{exc}", []
    results = target_results(job.id)
    text = f"Job {job.id}: {job.state} — {progress_words(job, results)} — {plain(job.stage)}"
    if job.error:
        text += f"\n\n{plain(job.error)}"
    return text, [[plain(cell) if isinstance(cell, str) else cell for cell in row] for row in summary_rows(results)]


def check_scores(info: dict) -> str:
    """An output's check against the original, in one line ('' when it has none)."""
    check = info.get("check") or {}
    if not check:
        return ""
    return (f"Check: lowest PSNR **{check.get('min_psnr_db', 0):.1f} dB** (threshold "
            f"{check.get('threshold_psnr_db', 0):.0f} dB), SSIM {min(check.get('ssim') or [0]):.4f}; "
            f"{'passed' if check.get('passed') else 'failed'}")


def output_view(name: str | None) -> tuple:
    """A finished output as the tab shows it: file tree, quantization_info.json, card, the image grid
    (pictures with captions, handed over as pictures, not paths: the data folder may lie outside what
    the page serves) and the check scores. Nothing picked: all empty."""
    if not name:
        return "", None, "", [], ""
    from PIL import Image

    from ..diffusion.outputs import card_preview, describe_output

    out = describe_output(name)
    images = [(Image.open(path).convert("RGB"), caption) for path, caption in out.images]
    return out.tree, out.info, card_preview(out.card), images, check_scores(out.info)


@dataclass(frozen=True)
class QuantizeScreen:
    """The Quantize tab's live part: the runs, the selected one (restored after a reload) with its
    status and target rows, and the finished outputs with the one picked."""
    rows: list[list]
    job_id: str
    status: str
    results: list[list]
    outputs: list[str]
    output: str | None


def quantize_screen(job_id: str | None, output: str | None, actor: Actor | None) -> QuantizeScreen:
    from ..diffusion.job import target_results
    from ..diffusion.outputs import list_outputs

    found = job_store.list_jobs(kind="quantize", actor=actor, limit=30)
    job_id = selected_job(found, job_id)
    outputs = list_outputs()
    rows = job_rows(found)
    for row, job in zip(rows, found):   # progress as what was done (a finished run: its targets done)
        if job.done:
            row[RUN_COLUMNS.index("Progress")] = progress_words(job, target_results(job.id))
    return QuantizeScreen(rows, job_id or "", *run_status(job_id, actor), outputs,
                          output if output in outputs else (outputs[0] if outputs else None))


def push(name: str | None, org: str | None, private: bool, *, visitor_token: str | None = None,
         actor: Actor | None = None) -> str:
    """Push the output `name` to the Hub user or organisation `org`, with the visitor's own sign-in on
    a Space (`visitor_token`), the local login otherwise; what was done, in words."""
    from .. import hub
    from ..diffusion.targets import push_output

    if not name:
        raise ConfigError("pick an output to push")
    if not org or not org.strip():
        raise ConfigError("enter the Hub user or organisation to push to")
    url = push_output(name, org=org.strip(), private=bool(private), token=hub.visitor_token(visitor_token),
                      actor=actor)
    return f"Pushed **{name}** to {url} (one commit, verified file by file)"
