"""The Convert tab's INT8 panel in words: the running search's attempts, live, then the result
(agreement with its lower bound, mean/max |Δprob|, speed-up, enabled or why not)."""

from __future__ import annotations

from .. import jobs as job_store, registry
from ..access import Actor
from .models import attempt_line, int8_search_lines, vs_fp32_line


def auto_methods_text() -> str:
    """The calibration methods `--method auto` tries, by onnxruntime's names: "MinMax, Percentile"."""
    from ..classify.int8_quantizer import AUTO_METHODS, CALIBRATION_METHODS

    return ", ".join(CALIBRATION_METHODS[m][0] for m in AUTO_METHODS)


def gate_text() -> str:
    """The INT8 gate in words: "99% agreement, mean |Δprob| ≤ 0.02"."""
    return f"{registry.MIN_INT8_AGREEMENT:.0%} agreement, mean |Δprob| ≤ {registry.MAX_INT8_MEAN_DPROB}"


def _int8_of(model_id: str, actor: Actor | None) -> registry.Model | None:
    from ..classify.quantize import int8_id

    for m in registry.list_models(actor=actor):
        if m.id == model_id and m.precision == registry.INT8:
            return m
        if m.id == int8_id(model_id):
            return m
    return None


def int8_panel(model_id: str | None, actor: Actor | None) -> str:
    """Markdown: the latest INT8 job of this model that `actor` may see (its attempts so far), and
    the INT8 copy's figures once it exists."""
    from ..classify.quantize import JOB_KIND

    if not model_id:
        return ""
    parts = []
    found = [j for j in job_store.list_jobs(kind=JOB_KIND, actor=actor, limit=20)
             if j.subject == model_id or (j.params or {}).get("target_id") == model_id]
    if found:
        job = found[0]
        attempts = [e["data"] for e in job_store.events(job.id) if (e.get("data") or {}).get("number")]
        parts.append(f"**INT8 job `{job.id}`: {job.state}**" + (f" — {job.error}" if job.error else ""))
        parts += [f"- {attempt_line(a)}" for a in attempts]
    m = _int8_of(model_id, actor)
    if m is not None and m.vs_fp32:
        state = "**enabled**" if m.enabled else "**not enabled**"
        parts.append(f"**{m.id}**: {state} — {vs_fp32_line(m.vs_fp32)}")
        parts += [f"- {line}" for line in int8_search_lines(m)]
    return "\n".join(parts)
