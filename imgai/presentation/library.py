"""What the Library view shows, computed once: the review queue grouped by image (with a
thumbnail), one image's pending tags, the "n of m reviewed" line, search hits with their tags.
Pure functions over imgai.library; the tab turns them into components."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import access
from ..library import review, search

ACCEPT_CELL, REJECT_CELL = "✓ accept", "✗ reject"     # the cells of one image's tag table that decide
THUMBNAIL = 256          # px, the longest side of a gallery thumbnail
REVIEW_PAGE = 24         # images in the review gallery at once


@dataclass
class ReviewImage:
    path: str
    tags: list[review.Pending] = field(default_factory=list)

    @property
    def caption(self) -> str:
        return f"{len(self.tags)} to review: " + ", ".join(f"{t.label} {t.score:.2f}" for t in self.tags[:4])


def review_queue(*, label: str | None = None, limit: int = REVIEW_PAGE, actor=None) -> list[ReviewImage]:
    """Images with pending tags, most uncertain-but-likely first, each with its pending tags."""
    images: dict[str, ReviewImage] = {}
    for item in review.pending(label=label, actor=actor):
        if item.path not in images:
            if len(images) == limit:
                continue
            images[item.path] = ReviewImage(item.path)
        images[item.path].tags.append(item)
    return list(images.values())


def progress_line(*, actor=None) -> str:
    done, total = review.progress(actor=actor)
    if not total:
        return "Nothing to review: no tag falls between a review floor and its threshold."
    return f"**{done} of {total} reviewed** ({total - done} pending)."


def pending_labels(*, actor=None) -> list[tuple[str, int]]:
    """(label, pending count), most pending first: the choices of "accept all ≥ x"."""
    counts: dict[str, int] = {}
    for item in review.pending(actor=actor):
        counts[item.label] = counts.get(item.label, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def thumbnail(path: str):
    """A small RGB copy of an image for a gallery (the page never gets a server path); None if unreadable."""
    from PIL import Image

    from ..classify.preprocess import decode_image

    try:
        image = decode_image(path)
    except ValueError:
        return None
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
    return image


def gallery(items: list[tuple[str, str]]) -> list[tuple]:
    """[(thumbnail, caption)] for (path, caption) pairs, unreadable images left out."""
    out = []
    for path, caption in items:
        thumb = thumbnail(path)
        if thumb is not None:
            out.append((thumb, caption))
    return out


def search_hits(text: str, *, min_score: float | None = None, actor=None) -> tuple[str, list[tuple[str, str]]]:
    """("n images match", [(path, caption with tags and scores)])."""
    result = search.search(text, min_score=min_score, actor=actor)
    shown = [(h.path, ", ".join(f"{t.label} {t.score:.2f}" if t.score is not None else f"{t.label} (added)"
                               for t in h.tags)) for h in result.hits]
    more = f", the first {len(shown)} shown" if result.total > len(shown) else ""
    return f"**{result.total}** image(s) match `{text}`{more}.", shown


@dataclass
class ReviewScreen:
    """The review view: gallery [(thumbnail, caption)], the paths behind it, the progress line, the
    "accept all ≥ x" choices [(shown, label)] and the label chosen (None: every tag)."""
    gallery: list
    paths: list[str]
    progress: str
    choices: list[tuple[str, str]]
    label: str | None


def review_screen(label: str | None, *, actor=None) -> ReviewScreen:
    """The review view for `label` (None, or a label with nothing left to review: every tag); for a
    stranger on a public app, why the library is not theirs instead of an error on load."""
    why = access.refused(actor, "library")
    if why:
        return ReviewScreen([], [], f"🔒 {why}; upload tagging stays in the **Tag** tab.", [], None)
    labels = pending_labels(actor=actor)
    label = label if label in [name for name, _ in labels] else None
    queue = review_queue(label=label, actor=actor)
    return ReviewScreen(gallery([(i.path, i.caption) for i in queue]), [i.path for i in queue],
                        progress_line(actor=actor), [(f"{name} ({n})", name) for name, n in labels], label)


NO_IMAGE = "Select an image in the gallery to review its tags."


def image_tags(path: str | None, *, actor=None) -> tuple[str, list[list]]:
    """One image's pending tags: a note and rows [label, score, accept cell, reject cell]."""
    if not path:
        return NO_IMAGE, []
    rows = [[p.label, round(p.score, 3), ACCEPT_CELL, REJECT_CELL]
            for p in review.pending(actor=actor) if p.path == path]
    return (f"**{len(rows)} tag(s) to review** in `{Path(path).name}` — click ✓ or ✗; from the keyboard, tick the "
            "tags to accept below (Tab, Space) and press the button (Enter): the rest are rejected."), rows


def decide_image(path: str | None, accepted: list[str] | None, *, actor=None) -> str:
    """One image reviewed at once: its pending tags in `accepted` accepted, the others rejected; the
    progress line after it."""
    access.check(actor, "library")
    if path:
        labels = {p.label for p in review.pending(actor=actor) if p.path == path}
        ticked = set(accepted or ())
        review.decide([{"path": path, "label": label, "action": review.ACCEPT if label in ticked else review.REJECT}
                       for label in sorted(labels)], actor=actor)
    return progress_line(actor=actor)


def tag_folder(folder: str | None, progress, *, actor=None) -> str:
    """Tag `folder` into the library, reporting to `progress((done, total), desc=..., unit=...)` (the
    plan's summary first, then each image); the run's summary in words."""
    from ..classify.tag import TagOptions
    from ..library.run import tag_into_library

    count = {"done": 0, "total": 0}

    def planned(plan):
        count["total"] = len(plan.to_tag)
        progress((0, max(1, count["total"])), desc=plan.summary())

    def step(result):
        count["done"] += 1
        progress((count["done"], max(1, count["total"])), desc="tagging", unit="images")

    report = tag_into_library([folder.strip()] if folder and folder.strip() else [], options=TagOptions(),
                              on_plan=planned, on_result=step, actor=actor)
    return f"Library: {report.summary} (model **{report.model_id}**)."
