"""The Library tab in a real browser (Debian's Chromium): a folder tagged into the library, the
Review gallery of images with pending tags, one click on ✓ accepting a tag (the progress line
moves and the tag leaves the list), "accept all ≥ x" for a tag, and a search with its gallery."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_fixtures import browser, needs_chromium, page, visible  # noqa: F401 (fixture)
from tests.conftest import served_tab
from tests.waiting import wait_until
from tests.library_fixtures import photo_folder, wd_default  # noqa: F401 (fixture)
from ui.library import ACCEPT_ALL

pytestmark = needs_chromium


@pytest.fixture
def library_tab(wd_default):
    from ui import library

    with served_tab(library) as url:
        yield url


def test_review_one_click_accept_all_and_search(library_tab, page, tmp_path, output_dir):
    from playwright.sync_api import expect

    from imgai.library import review

    folder = tmp_path / "photos"
    photo_folder(folder, 6, size=(64, 48))
    review.set_thresholds("general", review=0.4, accept=0.9)       # smile, long_hair, blue_eyes… to review

    page.goto(library_tab, wait_until="load")
    progress = page.locator("#library-progress")
    progress.get_by_text("Nothing to review").wait_for(timeout=30000)     # the page's first read has landed
    page.get_by_label("Folder on this machine").fill(str(folder))
    expect(page.get_by_label("Folder on this machine")).to_have_value(str(folder))
    page.get_by_role("button", name="Tag into the library").click()
    visible(page, "Library: 0 unchanged, 6 new").wait_for(timeout=60000)
    progress.get_by_text("0 of").wait_for(timeout=30000)
    total = int(progress.inner_text().split(" of ")[1].split()[0])
    assert total == len(review.pending())

    page.locator("#library-queue button").first.click()
    page.locator("#library-image").get_by_text("tag(s) to review").wait_for(timeout=30000)
    cell = lambda row, col: page.locator(f"#library-tags [data-testid=cell-{row}-{col}]")  # noqa: E731
    first_tag = cell(0, 0).inner_text().strip()
    page.screenshot(path=str(output_dir / "review-before.png"))
    cell(0, 2).click()
    progress.get_by_text(f"1 of {total} reviewed").wait_for(timeout=30000)
    chosen = [d for d in review.export_decisions() if d["action"] == "accept"]
    assert [d["label"] for d in chosen] == [first_tag]

    page.get_by_label("Only this tag").click()
    page.get_by_role("option").filter(has_text="smile").first.click()
    page.get_by_role("button", name=ACCEPT_ALL).click()
    visible(page, "Accepted smile on").wait_for(timeout=30000)
    assert not [p for p in review.pending() if p.label == "smile" and p.score >= 0.3]
    page.locator("#library-queue button").first.wait_for(timeout=30000)      # the other tags still to review
    expect(page.locator("#library-tags")).not_to_contain_text("smile", timeout=30000)   # the table followed
    page.screenshot(path=str(output_dir / "review-after.png"))

    page.get_by_role("tab", name="Search").click()
    page.locator("#library-query textarea, #library-query input").first.fill("smile -long_hair")
    page.keyboard.press("Enter")
    summary = page.locator("#library-search-summary")
    summary.get_by_text("image(s) match").wait_for(timeout=30000)
    from imgai.library.search import search

    expected = search("smile -long_hair").total
    assert expected == 5                        # smile accepted on all six, long_hair by the click on one
    assert summary.inner_text().startswith(f"{expected} image(s) match")
    assert page.locator("#library-matches button").count() == expected
    page.screenshot(path=str(output_dir / "search.png"))

    # from the keyboard: tick one tag of an image (Space), press the button (Enter): that tag is
    # accepted and the image's other pending tags rejected, in one step
    from imgai.presentation.library import review_queue

    page.get_by_role("tab", name="Review").click()
    page.locator("#library-queue button").first.click()
    boxes = page.locator("#library-ticks input[type=checkbox]")
    boxes.first.wait_for(timeout=30000)
    labels = [label.inner_text().strip() for label in page.locator("#library-ticks label").all()]
    pending = {(p.path, p.label) for p in review.pending()}
    before = {(d["path"], d["label"]) for d in review.export_decisions()}
    boxes.first.focus()
    page.keyboard.press("Space")
    page.locator("#library-decide-image").focus()
    page.keyboard.press("Enter")
    wait_until(lambda: len(review.export_decisions()) == len(before) + len(labels), 30, "the image's tags decided")
    new = [d for d in review.export_decisions() if (d["path"], d["label"]) not in before]
    (path,) = {d["path"] for d in new}                       # one image, each of its pending tags once
    assert sorted(d["label"] for d in new) == sorted(labels) and {(path, label) for label in labels} <= pending
    assert [d["label"] for d in new if d["action"] == "accept"] == [labels[0]]
    assert sum(d["action"] == "reject" for d in new) == len(labels) - 1
    # the reviewed image leaves the queue; the one now at its place is shown, in the preview and beside it
    done, total = review.progress()
    progress.get_by_text(f"{done} of {total} reviewed").wait_for(timeout=30000)
    now_at_place = review_queue()[0]
    page.locator("#library-image").get_by_text(Path(now_at_place.path).name).wait_for(timeout=30000)
    assert page.locator("#library-queue").get_by_text(now_at_place.caption).count() >= 1
    page.screenshot(path=str(output_dir / "review-keyboard.png"))
