"""The Browse tab's Hub part in words: one repo's details (what imgai would download, whether it is
supported and already registered) and a download job's progress, each as markdown."""

from __future__ import annotations

from .. import jobs as job_store
from ..hub.results import ModelDetails
from ..hub.support import human_size

NO_REPO = "Select a model in the results."


def _model_line(d: ModelDetails) -> str:
    m = d.model
    if not (d.supported and m):
        return f"**Not supported**: {d.reason}"
    return (f"**{m.family}** — {m.library} `{m.architecture}`, {m.labels or '?'} labels, "
            f"license **{m.license or 'unknown'}**{', gated: ' + str(m.gated) if m.gated else ''}")


def details_markdown(d: ModelDetails) -> str:
    """A repo (imgai.hub.info): its commit, family or why it is not supported, card summary, the first
    labels, what a download takes, and whether it is in the registry already."""
    m = d.model
    lines = [f"### {d.repo_id}", f"commit `{(d.sha or '')[:12]}`", _model_line(d)]
    if d.card_summary:
        lines.append(f"> {d.card_summary}")
    if d.label_names:
        lines.append("Labels: " + ", ".join(f"`{x}`" for x in d.label_names[:12]) +
                     (" …" if m and (m.labels or 0) > 12 else ""))
    needed = [f for f in d.files if f["needed"]]
    lines.append(f"Download: **{human_size(d.download_size)}** in {len(needed)} files "
                 f"({', '.join(f['path'] for f in needed)}) of {human_size(d.total_size)} in the repo")
    if d.in_registry:
        lines.append(f"Already in the registry as **{d.in_registry}**.")
    elif d.registered_other_revision:
        lines.append(f"Another revision is in the registry as **{d.registered_other_revision}**.")
    return "\n\n".join(lines)


def download_words(job: job_store.Job) -> str:
    """A download job: its progress while it runs, then where the model went (and the next step) or
    why it stopped."""
    if job.state == job_store.SUCCEEDED:
        r = job.result or {}
        note = " (it was already there)" if r.get("already_registered") else ""
        return (f"Done: **{job.subject}** registered as **{r.get('model_id')}**{note}; it is listed in the "
                "**Convert** tab: press **Convert to ONNX** there.")
    if job.state in (job_store.FAILED, job_store.CANCELLED):
        return f"Download of **{job.subject}** {job.state}: {job.error}"
    return f"Downloading: {job.progress:.0%} — {job.stage or job.state}"
