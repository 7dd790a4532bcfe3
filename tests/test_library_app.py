"""The Library tab in a real browser (Debian's Chromium): a folder tagged into the library, the
Review gallery of images with pending tags, one click on ✓ accepting a tag (the progress line
moves and the tag leaves the list), "accept all ≥ x" for a tag, and a search with its gallery."""

from __future__ import annotations

import pytest

from tests.browser_fixtures import VIEWPORT, browser, needs_chromium, visible  # noqa: F401 (fixture)
from tests.conftest import served_tab
from tests.library_fixtures import photo_folder, wd_default  # noqa: F401 (fixture)

pytestmark = needs_chromium


@pytest.fixture
def library_tab(wd_default):
    from ui import library

    with served_tab(library) as url:
        yield url


def test_review_one_click_accept_all_and_search(library_tab, browser, tmp_path, output_dir):
    from imgai.library import review

    folder = tmp_path / "photos"
    photo_folder(folder, 6, size=(64, 48))
    review.set_thresholds("general", review=0.4, accept=0.9)       # smile, long_hair, blue_eyes… to review

    page = browser.new_page(viewport=VIEWPORT)
    page.goto(library_tab)
    page.get_by_label("Folder on this machine").fill(str(folder))
    page.get_by_role("button", name="Tag into the library").click()
    visible(page, "Library: 0 unchanged, 6 new").wait_for(timeout=60000)
    progress = page.locator("#library-progress")
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
    page.get_by_role("button", name="Accept all ≥ x").click()
    visible(page, "Accepted smile on").wait_for(timeout=30000)
    assert not [p for p in review.pending() if p.label == "smile" and p.score >= 0.3]
    page.locator("#library-queue button").first.wait_for(timeout=30000)      # the other tags still to review
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
