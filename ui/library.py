"""Library tab: tag a folder into the photo library, review the uncertain tags (a gallery of
images with pending tags; one click per tag to accept or reject; "accept all ≥ x" per tag;
"n of m reviewed"), set the review thresholds, and search ("cat -dog") with a gallery of matches.

For the local user and a Space's owner and admins (imgai/access.py: `library`); every handler
asks imgai, so a stranger calling an endpoint is refused there."""

from __future__ import annotations


import gradio as gr

from imgai import access
from imgai.library import review
from imgai.library.review import ACCEPT, CATEGORIES, REJECT
from imgai.presentation import library as shown

from .common import acting
from .page import Page

TAG_COLUMNS = ["Tag", "Score", "Accept", "Reject"]
ACCEPT_ALL = "Accept the picked tag ≥ min score"       # the tag in "Only this tag", on every image


@acting
def tag_folder(folder, progress=gr.Progress(), *, actor):
    return shown.tag_folder(folder, progress, actor=actor)


@acting
def load_review(label, *, actor):
    """The review gallery, the paths behind it, the progress line and the labels with pending tags."""
    screen = shown.review_screen(label, actor=actor)
    return screen.gallery, screen.paths, screen.progress, gr.update(choices=screen.choices, value=screen.label)


@acting
def image_tags(path, *, actor):
    """The pending tags of one image, as rows with an accept and a reject cell, and as boxes to tick."""
    note, rows = shown.image_tags(path, actor=actor)
    return note, rows, gr.update(choices=[row[0] for row in rows], value=[])


@acting
def decide_image(path, accepted, *, actor):
    return shown.decide_image(path, accepted, actor=actor)


def select_image(evt: gr.SelectData, paths: list):
    """The image clicked in the gallery, and its place there."""
    index = evt.index if isinstance(evt.index, int) else 0
    return follow_selection(paths, index), index


def follow_selection(paths: list, index: int | None):
    """After the gallery is refreshed, the image now at the place the person selected (the next one
    to review, when the reviewed one left the queue), as the gallery's preview shows it."""
    return paths[index] if paths and index is not None and 0 <= index < len(paths) else None


def clicked_cell(evt: gr.SelectData):
    """[label, action] of the cell a person clicked in the tag table (None off the buttons)."""
    row, column = (evt.index if isinstance(evt.index, (list, tuple)) else (None, None))
    value = getattr(evt, "row_value", None)
    if not value or column not in (2, 3):
        return None
    return [value[0], ACCEPT if column == 2 else REJECT]


@acting
def decide_clicked(path, clicked, *, actor):
    if path and clicked:
        review.decide([{"path": path, "label": clicked[0], "action": clicked[1]}], actor=actor)
    return shown.progress_line(actor=actor)


@acting
def accept_all(label, min_score, *, actor):
    if not label:
        return "Pick a tag in **Only this tag** first: this accepts that tag on every image that scores at least the min score."
    n = review.accept_all(label, float(min_score), actor=actor)
    return f"Accepted **{label}** on {n} image(s) scoring ≥ {float(min_score):.2f}. " + shown.progress_line(actor=actor)


@acting
def save_thresholds(category, review_floor, accept, *, actor):
    limits = review.set_thresholds(category, review=float(review_floor), accept=float(accept), actor=actor)
    r, a = limits.values[category]
    return f"{category}: review from {r:.2f}, accept from {a:.2f} (kept for the next runs and the CLI)."


@acting
def show_thresholds(category, *, actor):
    if access.refused(actor, "library"):
        return gr.update(), gr.update()
    r, a = review.thresholds().values[category]
    return r, a


@acting
def search_library(text, min_score, *, actor):
    summary, hits = shown.search_hits(text, min_score=float(min_score) or None, actor=actor)
    return summary, shown.gallery(hits)


def build(demo: gr.Blocks, page: Page | None = None) -> None:
    page = page or Page(demo, standalone=True)
    gr.Markdown("The photo library: folders tagged here (or with `imgai tag FOLDER`) are remembered, so a "
                "second run only tags what changed. Review the uncertain tags, search, and export with "
                "`imgai library export`.")
    with gr.Row():
        folder = gr.Textbox(label="Folder on this machine", placeholder="/path/to/photos", scale=4)
        run = gr.Button("Tag into the library", variant="primary", scale=1)
    run_summary = gr.Markdown(elem_id="library-run")
    with gr.Tab("Review"):
        progress_md = gr.Markdown(elem_id="library-progress")
        with gr.Row():
            with gr.Column(scale=3):
                only = gr.Dropdown(label="Only this tag", choices=[], allow_custom_value=True)
                queue = gr.Gallery(label="Images with tags to review", columns=4, height="auto",
                                   object_fit="contain", elem_id="library-queue")
            with gr.Column(scale=2):
                image_note = gr.Markdown(shown.NO_IMAGE, elem_id="library-image")
                tags = gr.Dataframe(headers=TAG_COLUMNS, interactive=False, elem_id="library-tags",
                                    elem_classes="imgai-table")
                with gr.Row():
                    ticks = gr.CheckboxGroup(label="Tags to accept (the rest are rejected)", choices=[],
                                             elem_id="library-ticks", scale=3)
                    decide_button = gr.Button("Accept ticked, reject the rest", elem_id="library-decide-image",
                                              scale=1)
                with gr.Row():
                    min_score = gr.Slider(0.0, 1.0, value=0.3, step=0.01, label="Min score", scale=2)
                    accept_button = gr.Button(ACCEPT_ALL, elem_id="library-accept-all", scale=1)
                accept_note = gr.Markdown()
        with gr.Accordion("Thresholds", open=False):
            with gr.Row():
                category = gr.Dropdown(CATEGORIES, value="general", label="Category")
                review_floor = gr.Slider(0.0, 1.0, step=0.01, label="Review from")
                accept = gr.Slider(0.0, 1.0, step=0.01, label="Accept from")
                save = gr.Button("Save")
            thresholds_note = gr.Markdown()
    with gr.Tab("Search"):
        with gr.Row():
            query = gr.Textbox(label="Search", placeholder='cat -dog "long hair"', scale=4, elem_id="library-query")
            search_min = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Min score (0: each tag's threshold)", scale=2)
        search_summary = gr.Markdown(elem_id="library-search-summary")
        matches = gr.Gallery(label="Matches", columns=5, height="auto", object_fit="contain",
                             elem_id="library-matches")

    paths = gr.State([])
    current = gr.State(None)
    place = gr.State(None)             # the selected image's place in the gallery
    clicked = gr.State(None)
    refresh_inputs, refresh_outputs = [only], [queue, paths, progress_md, only]
    page.listen(load_review, refresh_inputs, refresh_outputs, also=[only.input], api_name="library_review")
    page.changed(run.click(tag_folder, [folder], [run_summary], api_name="library_tag",
                           show_progress_on=[run_summary])).then(
        load_review, refresh_inputs, refresh_outputs, api_name=False)
    queue.select(select_image, [paths], [current, place], api_name=False, show_progress="hidden").then(
        image_tags, [current], [image_note, tags, ticks], api_name=False)
    tags.select(clicked_cell, None, [clicked], api_name=False, show_progress="hidden").then(
        decide_clicked, [current, clicked], [progress_md], api_name="library_decide").then(
        image_tags, [current], [image_note, tags, ticks], api_name=False)
    decide_button.click(decide_image, [current, ticks], [progress_md], api_name="library_decide_image").then(
        load_review, refresh_inputs, refresh_outputs, api_name=False).then(
        follow_selection, [paths, place], [current], api_name=False, show_progress="hidden").then(
        image_tags, [current], [image_note, tags, ticks], api_name=False)
    accept_button.click(accept_all, [only, min_score], [accept_note], api_name="library_accept_all").then(
        load_review, refresh_inputs, refresh_outputs, api_name=False).then(
        follow_selection, [paths, place], [current], api_name=False, show_progress="hidden").then(
        image_tags, [current], [image_note, tags, ticks], api_name=False)
    gr.on([page.on_open, category.change], show_thresholds, [category], [review_floor, accept], api_name=False,
          trigger_mode="always_last")
    save.click(save_thresholds, [category, review_floor, accept], [thresholds_note],
               api_name="library_thresholds").then(load_review, refresh_inputs, refresh_outputs, api_name=False)
    query.submit(search_library, [query, search_min], [search_summary, matches], api_name="library_search")
