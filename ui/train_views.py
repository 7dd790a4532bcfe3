"""What the Train tab shows, as plain rows and frames built from imgai objects (no actions here)."""

from __future__ import annotations

import pandas as pd

from imgai import jobs, registry, train
from imgai.presentation.train import architecture_order, unfinished_note
from imgai.train.models import is_trainable

from .common import shown_folder, when

ARCH_COLUMNS = ["Architecture", "timm name", "Family", "Params (M)", "Image size", "Starts from"]
ARCH_WIDTHS = ["15%", "17%", "10%", "9%", "9%", "40%"]
PIPELINE_COLUMNS = ["Name", "Kind", "Source", "Val split", "Image size", "Augmentations"]
JOB_COLUMNS = ["Job", "Model", "Architecture", "Data", "Current Epoch Ratio", "Progress", "Throughput (img/s)",
               "Val accuracy", "Started"]
FAILED_COLUMNS = JOB_COLUMNS + ["State", "Error"]
TABLES = {   # table → the job states it lists
    "Queued": (jobs.QUEUED, jobs.STARTING),
    "In Progress": (jobs.RUNNING,),
    "Complete": (jobs.SUCCEEDED,),
    "Failed": (jobs.FAILED, jobs.CANCELLED),
}


def architecture_rows() -> list[list]:
    """The architectures, those whose ImageNet weights are at hand first (the table's first rows show)."""
    return [[r["architecture"], r["timm_name"], r["family"], r["params_m"], r["image_size"],
             r["starting_weights"]] for r in architecture_order(train.architectures_table())]


def pipeline_rows(actor) -> list[list]:
    return [[p.name, p.kind, shown_folder(p.location) if p.kind == "folder" else p.location, p.val_split, p.image_size, ", ".join(p.augmentations) or "none"]
            for p in train.list_pipelines(actor=actor)]


def pipeline_names(actor) -> list[str]:
    return [p.name for p in train.list_pipelines(actor=actor)]


def trainable_models(actor) -> list[tuple[str, str]]:
    return [(f"{m.name} ({m.architecture}, {m.training})", m.id) for m in registry.list_models(actor=actor)
            if is_trainable(m)]


def _pct(x) -> str:
    return "" if x is None else f"{x:.1%}"


def job_tables(actor) -> tuple[dict[str, list[list]], list[train.TrainingView]]:
    views = [train.view(j) for j in train.list_training(actor=actor, limit=100)]
    tables: dict[str, list[list]] = {name: [] for name in TABLES}
    for v in views:
        row = [v.job_id, v.model_name, v.architecture, v.data, v.epoch_ratio, f"{v.progress:.0%}",
               f"{v.samples_per_s:.0f}" if v.samples_per_s else "", _pct(v.val_accuracy),
               when(v.started_at or v.created_at)]
        for name, states in TABLES.items():
            if v.state in states:
                tables[name].append(row + ([v.state, v.error or ""] if name == "Failed" else []))
    return tables, views


def curve_frames(job_id: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long-format frames for gr.LinePlot: loss (train/val) and accuracy (train/val) per epoch."""
    loss, acc = [], []
    for point in train.curves(job_id) if job_id else []:
        e = point["epoch"]
        loss.append((e, point["train_loss"], "train"))
        acc.append((e, point["train_accuracy"], "train"))
        if point.get("val_loss") is not None:
            loss.append((e, point["val_loss"], "validation"))
            acc.append((e, point["val_accuracy"], "validation"))
    columns = ["epoch", "value", "series"]
    return pd.DataFrame(loss, columns=columns), pd.DataFrame(acc, columns=columns)


def job_detail(job_id: str | None, actor) -> tuple[str, list[list], dict]:
    """Markdown about one job, per-class accuracy rows, and its confusion matrix as a table."""
    if not job_id:
        return "Select a job in one of the tables.", [], {"headers": ["true \\ predicted"], "data": []}
    job = jobs.get(job_id, actor=actor)
    v = train.view(job)
    lines = [f"**Job `{v.job_id}`** — {v.model_name} ({v.architecture}) on `{v.data}`: **{v.state}**, "
             f"{v.epoch_ratio} epochs"]
    if v.samples_per_s:
        lines.append(f"Throughput: {v.samples_per_s:.0f} images/s; validation accuracy {_pct(v.val_accuracy)}")
    if v.starting_weights:
        lines.append("Started from ImageNet weights." if v.starting_weights != "scratch"
                     else "⚠️ No pretrained weights on this machine: trained from scratch.")
    warnings = job.params.get("data_warnings") or []
    lines += [f"⚠️ {w}" for w in warnings[:3]]
    if v.error:
        lines.append(f"**Error:** {v.error}")
    result = job.result or {}
    if job.state == jobs.SUCCEEDED and result.get("labels"):
        note = unfinished_note(train.curves(job.id), classes=len(result["labels"]),
                               loss=(job.params.get("config") or {}).get("loss", "cross_entropy"))
        if note:
            lines.append(f"⚠️ {note}")
    if result.get("pytorch_path"):
        lines.append(f"Saved as run {result['run']} of **{result['model_id']}** — convert it in the Convert tab.")
    per_class = [[label, _pct(acc)] for label, acc in (result.get("per_class_accuracy") or {}).items()]
    confusion = {"headers": ["true \\ predicted"], "data": []}
    if result.get("confusion_matrix"):
        labels = result["labels"]
        confusion = {"headers": ["true \\ predicted", *labels],
                     "data": [[labels[i], *row] for i, row in enumerate(result["confusion_matrix"])]}
    return "  \n".join(lines), per_class, confusion


def report_markdown(report) -> str:
    lines = [f"**{report.images} images in {len(report.labels)} classes** — "
             + ", ".join(f"{k}: {n}" for k, n in report.counts.items())]
    lines += [f"⚠️ {w}" for w in report.warnings]
    lines += [f"Problem: {p}" for p in report.problems]
    if report.ok:
        lines.append("Ready to train.")
    return "  \n".join(lines)


def config_values(job_id: str, actor) -> dict:
    """A job's settings, to fill the training form for Retrain."""
    job = jobs.get(job_id, actor=actor)
    return {"model": job.subject, "data": job.params["data"]["name"], **job.params["config"]}
