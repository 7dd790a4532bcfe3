"""The Tag tab in words: whether a model is ready to tag (and, if not, what the visitor waits for),
a run's summary, table rows and per-image bars, each image named, so the bars on screen always say
which image they describe and follow a click in the gallery or the table."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from .. import registry
from ..access import Actor, public
from ..errors import ConfigError
from ..guide import DEMO_PREPARING, demo_status
from ..words import plain

TAG_COLUMNS = ["Image", "Tags"]
NO_IMAGE = "Tags of the selected image"


@dataclass(frozen=True)
class TagReadiness:
    """The Model field's choices, the one picked, whether Tag can be pressed, and why not."""
    choices: list[tuple[str, str]]
    value: str | None
    ready: bool
    note: str


def tag_readiness(current: str | None, actor: Actor | None) -> TagReadiness:
    """The models this visitor can tag with (enabled, validated ONNX), keeping `current` picked
    while it is listed (else the default, else the first). With none: Tag is greyed, and the note
    says what is happening — the demo being prepared (ready in about N s), or what to do."""
    models = [m for m in registry.list_models(actor=actor) if m.can_tag]
    ids = [m.id for m in models]
    value = current if current in ids else next((m.id for m in models if m.default), ids[0] if ids else None)
    choices = [(m.name if m.name != m.id else m.id, m.id) for m in models]
    if models:
        return TagReadiness(choices, value, True, "")
    status = demo_status()
    if status.state == DEMO_PREPARING:
        eta = f"ready in about {status.eta_s:.0f} s" if status.eta_s else "ready in under a minute"
        note = f"The demo model is being prepared, {eta}; Tag is offered as soon as it is. The Start tab shows its progress."
    else:
        note = f"No model is ready to tag yet. {plain(status.message)}"
    return TagReadiness(choices, None, False, note)


@dataclass(frozen=True)
class TaggedImage:
    """One image of a run as the page shows it: its name, the file the gallery serves, its bars
    (None when it could not be read) and its row in the table."""
    name: str
    file: str
    bars: dict[str, float] | None
    row: int


@dataclass(frozen=True)
class TagScreen:
    summary: str
    images: list[TaggedImage] = field(default_factory=list)   # gallery order: the images that were read
    rows: list[list] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    tagged: list[str] = field(default_factory=list)    # the uploaded files of the run (a new upload starts without them)


def tags_text(result) -> str:
    """One table cell: the tags with scores, or why the image could not be read."""
    if result.error:
        return f"could not be read: {plain(result.error)}"
    text = ", ".join(f"{t.label} {t.score:.2f}" for t in result.tags) or "(nothing above threshold)"
    return f"[{result.rating.label} {result.rating.score:.2f}] {text}" if result.rating else text


def tag_screen(report) -> TagScreen:
    """A finished run (imgai.classify.report.TagReport) as the Tag tab shows it."""
    images, rows = [], []
    for row, (r, file) in enumerate(zip(report.results, report.files)):
        rows.append([r.path, tags_text(r)])
        if not r.error:
            images.append(TaggedImage(r.path, file, {t.label: t.score for t in r.tags}, row))
    summary = f"Tagged {len(report.results) - report.failed} of {len(report.results)} images with {report.model_id}."
    if report.failed:
        summary += f" {report.failed} could not be read (see the table)."
    if len(images) > 1:
        summary += " Click an image, or a row of the table, to see its tags as bars."
    info = report.model_info or {}
    if info.get("preprocessing_assumed"):
        summary += (f"\n\nNote: its preprocessing is assumed ({info['preprocessing']}, inferred from the ONNX graph): "
                    f"check the tags, then confirm or edit it (`imgai models preprocess {info['model_id']} --confirm`).")
    return TagScreen(summary, images, rows, [str(report.csv_path), str(report.json_path)])


def bars_title(image: TaggedImage | None) -> str:
    return f"Tags of {image.name}" if image is not None else NO_IMAGE


def image_at(images: list[TaggedImage], index) -> TaggedImage | None:
    """The gallery's image `index` (None when out of range)."""
    return images[index] if isinstance(index, int) and 0 <= index < len(images) else None


def image_of_row(images: list[TaggedImage], row) -> int | None:
    """The gallery index of the image in table row `row` (None for a row of an unreadable image)."""
    return next((i for i, image in enumerate(images) if image.row == row), None)


def fresh_upload(files, tagged) -> list:
    """The upload field's files without those already tagged: each upload starts a new set unless
    the visitor chose to add to it. `files`: the field's value (gradio keeps adding uploads to it)."""
    done = set(tagged or [])
    return [f for f in (files or []) if (f if isinstance(f, str) else getattr(f, "name", f)) not in done]


def upload_paths(files) -> list[str]:
    """The upload field's files as paths (gradio gives paths, or objects with a `name`)."""
    return [f if isinstance(f, str) else f.name for f in (files or [])]


def tag_form(files, folder, model_id, top_k, threshold, general_threshold, character_threshold,
             underscores_to_spaces, exclude_tags, *, on_progress: Callable[[int, int], None] | None = None,
             actor: Actor | None = None) -> TagScreen:
    """The Tag form (its fields in order) run: the uploads and the folder tagged with `model_id` (none:
    the default), written as CSV and JSON, and shown (tag_screen). `on_progress(done, total)` after
    each image. No image at all is a ConfigError that says where images come from here."""
    from ..classify.report import tag_to_files
    from ..classify.tag import TagOptions

    paths = upload_paths(files)
    folders = [folder.strip()] if folder and folder.strip() else []
    if not paths and not folders:
        raise ConfigError("no images: upload some" + ("" if public() else ", or give a folder"))
    options = TagOptions(top_k=int(top_k) or None, threshold=float(threshold),
                         general_threshold=float(general_threshold), character_threshold=float(character_threshold),
                         underscores_to_spaces=bool(underscores_to_spaces), exclude_tags=exclude_tags or "")
    report = tag_to_files(paths, folders=folders, model_id=model_id or None, actor=actor, options=options,
                          on_result=(lambda done, total, result: on_progress(done, total)) if on_progress else None)
    return replace(tag_screen(report), tagged=paths)
