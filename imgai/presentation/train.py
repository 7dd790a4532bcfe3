"""The Train tab in words: which architecture a newcomer starts from, the architectures in the order
worth reading (weights at hand first), whether a finished run looks unfinished, the job tables, one
job's detail, curves and buttons, and a data pipeline's check. (The form: presentation/train_form.py.)"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import access, jobs, train
from ..access import Actor
from ..train.models import is_trainable
from ..train.runs import TrainingView
from .curves import svg_chart
from .jobs import when
from .locks import shown_folder

ACCURACY_BAR = 0.9      # a run that gets fewer of its own training images right has not learned them yet
LOSS_FACTOR = 2.0       # validation loss this many times the loss of guessing (ln classes) is "far above chance"


def default_architecture(rows: list[dict]) -> str:
    """The first architecture whose ImageNet weights are at hand here (offline, a model trained from
    random weights is poor), else the first of the table (imgai.train.architectures_table rows)."""
    return next((r["architecture"] for r in rows if r["pretrained"]), rows[0]["architecture"] if rows else "")


def architecture_order(rows: list[dict]) -> list[dict]:
    """The architectures table with those whose weights are at hand first (the table's order kept)."""
    return sorted(rows, key=lambda r: not r["pretrained"])


def unfinished_note(points: list[dict], *, classes: int, loss: str = "cross_entropy") -> str:
    """A finished run's last epoch, read for a newcomer: '' when it looks done, else why it looks
    unfinished and what to try. `points`: imgai.train.curves (train/val loss and accuracy per epoch)."""
    if not points:
        return ""
    last = points[-1]
    why = []
    chance = math.log(classes) if classes > 1 else None
    val_loss = last.get("val_loss")
    if loss == "cross_entropy" and chance and val_loss is not None and val_loss > LOSS_FACTOR * chance:
        why.append(f"its validation loss {val_loss:.2f} is far above guessing ({chance:.2f} for {classes} classes)")
    train_accuracy = last.get("train_accuracy")
    if train_accuracy is not None and train_accuracy < ACCURACY_BAR:
        why.append(f"it gets only {train_accuracy:.0%} of its own training images right")
    if not why:
        return ""
    return ("This run looks unfinished: " + " and ".join(why) + f" after {last['epoch']} epochs. Train more epochs "
            "(Retrain), or start from an architecture with ImageNet weights at hand.")


# -- the tables ------------------------------------------------------------------------------------

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
JOB_ACTIONS = ("jobs.cancel", "train.resume", "train.retrain", "train.download")   # the selected job's buttons
NO_JOB = "Select a job in one of the tables."
NO_CONFUSION = {"headers": ["true \\ predicted"], "data": []}


def pct(x) -> str:
    return "" if x is None else f"{x:.1%}"


def architecture_rows(table: list[dict]) -> list[list]:
    """The architectures (imgai.train.architectures_table), those whose ImageNet weights are at hand
    first (the table's first rows show)."""
    return [[r["architecture"], r["timm_name"], r["family"], r["params_m"], r["image_size"],
             r["starting_weights"]] for r in architecture_order(table)]


def pipeline_rows(pipelines) -> list[list]:
    """Data pipelines as rows; a folder named as a public app may name it."""
    return [[p.name, p.kind, shown_folder(p.location) if p.kind == "folder" else p.location, p.val_split,
             p.image_size, ", ".join(p.augmentations) or "none"] for p in pipelines]


def trainable_choices(models) -> list[tuple[str, str]]:
    """The Model field's choices: (name (architecture, training), id) of each trainable model."""
    return [(f"{m.name} ({m.architecture}, {m.training})", m.id) for m in models if is_trainable(m)]


def job_row(v: TrainingView) -> list:
    return [v.job_id, v.model_name, v.architecture, v.data, v.epoch_ratio, f"{v.progress:.0%}",
            f"{v.samples_per_s:.0f}" if v.samples_per_s else "", pct(v.val_accuracy),
            when(v.started_at or v.created_at)]


def job_tables(views: list[TrainingView]) -> dict[str, list[list]]:
    """Each table of TABLES with its jobs' rows (Failed adds the state and the error)."""
    tables: dict[str, list[list]] = {name: [] for name in TABLES}
    for v in views:
        for name, states in TABLES.items():
            if v.state in states:
                tables[name].append(job_row(v) + ([v.state, v.error or ""] if name == "Failed" else []))
    return tables


# -- one job ---------------------------------------------------------------------------------------

def curve_points(history: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """(epoch, value, series) points of the loss and the accuracy curves (train, and validation where
    the epoch has it). `history`: imgai.train.curves."""
    loss, accuracy = [], []
    for point in history:
        e = point["epoch"]
        loss.append((e, point["train_loss"], "train"))
        accuracy.append((e, point["train_accuracy"], "train"))
        if point.get("val_loss") is not None:
            loss.append((e, point["val_loss"], "validation"))
            accuracy.append((e, point["val_accuracy"], "validation"))
    return loss, accuracy


@dataclass(frozen=True)
class JobDetail:
    """One job in words, its per-class accuracy rows, and its confusion matrix as a table's value."""
    text: str
    per_class: list[list] = field(default_factory=list)
    confusion: dict = field(default_factory=lambda: dict(NO_CONFUSION))


SCRATCH = "No pretrained weights on this machine: trained from scratch."


def job_warnings(job: jobs.Job, v: TrainingView, history: list[dict]) -> list[str]:
    """What a person should know about a training job's result, in plain words (the Train tab marks
    each with ⚠️, `imgai train show` prints them): trained from scratch, the data's warnings, and a
    run that ended before it learnt."""
    warnings = [SCRATCH] if v.starting_weights == "scratch" else []
    warnings += list(job.params.get("data_warnings") or [])[:3]
    result = job.result or {}
    if job.state == jobs.SUCCEEDED and result.get("labels"):
        note = unfinished_note(history, classes=len(result["labels"]),
                               loss=(job.params.get("config") or {}).get("loss", "cross_entropy"))
        if note:
            warnings.append(note)
    return warnings


def _job_lines(job: jobs.Job, v: TrainingView, history: list[dict]) -> list[str]:
    lines = [f"**Job `{v.job_id}`** — {v.model_name} ({v.architecture}) on `{v.data}`: **{v.state}**, "
             f"{v.epoch_ratio} epochs"]
    if v.samples_per_s:
        lines.append(f"Throughput: {v.samples_per_s:.0f} images/s; validation accuracy {pct(v.val_accuracy)}")
    if v.starting_weights and v.starting_weights != "scratch":
        lines.append("Started from ImageNet weights.")
    lines += [f"⚠️ {w}" for w in job_warnings(job, v, history)]    # a run that ends early succeeded: no error
    if v.error:
        lines.append(f"**Error:** {v.error}")
    result = job.result or {}
    if result.get("pytorch_path"):
        lines.append(f"Saved as run {result['run']} of **{result['model_id']}** — convert it in the Convert tab.")
    return lines


def job_detail(job: jobs.Job | None, view: TrainingView | None, history: list[dict]) -> JobDetail:
    """A training job (None: none selected), its view (imgai.train.view) and its `history`
    (imgai.train.curves) in words."""
    if job is None:
        return JobDetail(NO_JOB)
    result = job.result or {}
    per_class = [[label, pct(acc)] for label, acc in (result.get("per_class_accuracy") or {}).items()]
    confusion = dict(NO_CONFUSION)
    if result.get("confusion_matrix"):
        labels = result["labels"]
        confusion = {"headers": ["true \\ predicted", *labels],
                     "data": [[labels[i], *row] for i, row in enumerate(result["confusion_matrix"])]}
    return JobDetail("  \n".join(_job_lines(job, view, history)), per_class, confusion)


def job_buttons(job: jobs.Job | None, actor: Actor | None) -> list[bool]:
    """Cancel, Resume, Retrain, Download: each when the job's state allows it and the policy lets
    this visitor act on this job."""
    state = job.state if job else None
    makes_sense = {"jobs.cancel": state in jobs.ACTIVE, "train.resume": state in train.RESUMABLE,
                   "train.retrain": job is not None, "train.download": state == jobs.SUCCEEDED}
    return [makes_sense[action] and not access.refused(actor, action, job) for action in JOB_ACTIONS]


@dataclass(frozen=True)
class TrainingScreen:
    """The Train tab's live part: the job tables, the selected job, its detail, its curves (None
    when they are those already drawn, `plot_key`), and which job buttons may be pressed."""
    tables: dict[str, list[list]]
    job_id: str
    detail: JobDetail
    plots: tuple[str, str] | None
    plot_key: list
    buttons: list[bool]


def training_screen(job_id: str | None, plot_key=None, *, actor: Actor | None) -> TrainingScreen:
    """The training jobs this visitor sees; `job_id` selected while it is listed (none given: the
    running one, else the newest). The curves are drawn again only when a point was added or the
    job changed (`plot_key`: the key of the curves on the page)."""
    views = [train.view(j) for j in train.list_training(actor=actor, limit=100)]
    if not job_id and views:
        job_id = next((v.job_id for v in views if v.state == jobs.RUNNING), views[0].job_id)
    selected = next((v for v in views if v.job_id == job_id), None)
    job = jobs.get(job_id, actor=actor) if selected else None
    history = train.curves(job.id) if job else []
    loss, accuracy = curve_points(history)
    key = [job_id, len(loss), selected and selected.state]    # redraw only when a point is added
    plots = None if tuple(key) == tuple(plot_key or ()) else (svg_chart(loss, "Loss"),
                                                               svg_chart(accuracy, "Accuracy", percent=True))
    return TrainingScreen(job_tables(views), job_id or "", job_detail(job, selected, history), plots, key,
                          job_buttons(job, actor))


def report_markdown(report: train.DataReport) -> str:
    """A data pipeline's check: images and classes, warnings, problems, and whether it can train."""
    lines = [f"**{report.images} images in {len(report.labels)} classes** — "
             + ", ".join(f"{k}: {n}" for k, n in report.counts.items())]
    lines += [f"⚠️ {w}" for w in report.warnings]
    lines += [f"Problem: {p}" for p in report.problems]
    if report.ok:
        lines.append("Ready to train.")
    return "  \n".join(lines)
