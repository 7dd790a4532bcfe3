"""What the Library view shows, computed once: the review queue grouped by image (with a
thumbnail), one image's pending tags, the "n of m reviewed" line, search hits with their tags.
Pure functions over imgai.library; the tab turns them into components."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..library import review, search

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
