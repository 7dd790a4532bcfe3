"""The app as a first-time user meets it (issue 23), in Debian's Chromium against ONE app server on
a fresh data folder: Tag greyed while no model is ready (saying so, not a red "no default model"),
the bars that name and follow the image on screen, each upload a fresh set, a reload that keeps
the tab and the Convert tab's selection, and Disable/Enable keeping the default's ★. The model is a
tiny one converted in this process (the demo's own preparation is tests/test_flows.py's; the
preparing wording is checked in-process in tests/test_presentation.py). Screenshots go to
test-output/test_first_user/ (looked at)."""

from __future__ import annotations

import shutil

import pytest

from tests.browser_fixtures import VIEWPORT, browser, needs_chromium, open_tab, visible  # noqa: F401 (fixture)
from tests.conftest import AppServer
from tests.factories import photo
from tests.test_flows import shot, upload

pytestmark = [*needs_chromium, pytest.mark.slow]
LONG = 300_000   # ms: a conversion on a loaded 2-core machine


@pytest.fixture
def fresh_app(tmp_path):
    server = AppServer(tmp_path / "home", env={"IMGAI_NO_DEMO": "1"})
    yield server
    server.stop()


def bars_title(page) -> str:
    return page.locator("#tag-bars").first.inner_text().splitlines()[0]


def test_first_user(fresh_app, browser, tiny_model_cache, tmp_path, output_dir, monkeypatch):
    from playwright.sync_api import expect

    pictures = {name: photo(name, tmp_path) for name in ("chelsea", "astronaut", "coffee", "rocket")}
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(fresh_app.url, wait_until="load")
        run = page.locator("#tag-run")
        open_tab(page, "Tag", showing=run)
        # 2. no model ready: Tag is greyed and says why (not a red "no default model … Set default")
        expect(page.locator("#tag-waiting")).to_contain_text("No model is ready to tag yet", timeout=30_000)
        expect(run).to_be_disabled()
        expect(page.locator("#tag-waiting")).not_to_contain_text("progress")   # nothing is in progress
        # an idle page asks the plain revision route (every 1.5 s), no gradio event
        with page.expect_request(f"{fresh_app.url}imgai/revision", timeout=10_000):
            pass
        open_tab(page, "Tag", showing=run)   # a loaded machine's late opening-tab event may have moved the page
        shot(page, output_dir, "1-tag-without-a-model")

        # a model converted (validated, enabled) and made the default elsewhere reaches the page
        monkeypatch.setenv("IMGAI_HOME", str(fresh_app.home))
        from imgai import registry
        from imgai.classify.convert import convert
        from imgai.sources import add_model

        model_id = convert(add_model(str(shutil.copytree(tiny_model_cache("timm-mobilenetv3"),
                                                         tmp_path / "model"))).id).id
        registry.set_default(model_id)
        other = registry.create(name="Another model", source="local:x", architecture="resnet18", library="timm").id
        expect(run).to_be_enabled(timeout=LONG)

        # 1. the bars name the image they describe and follow a click in the gallery or the table
        upload(page, pictures["chelsea"], pictures["astronaut"], pictures["coffee"])
        run.click()
        page.get_by_text("Tagged 3 of 3 images").wait_for(timeout=120_000)
        expect(page.locator("#tag-bars")).to_contain_text("Tags of chelsea.jpg")
        page.locator("#tag-gallery button.thumbnail-item").nth(2).click()
        expect(page.locator("#tag-bars")).to_contain_text("Tags of coffee.jpg")
        shot(page, output_dir, "2-third-selected")

        # a new upload starts a fresh set: the three tagged images leave the field
        upload(page, pictures["rocket"])
        expect(page.locator("#tag-images td.filename")).to_have_count(1)
        run.click()
        page.get_by_text("Tagged 1 of 1 images").wait_for(timeout=120_000)
        expect(page.locator("#tag-bars")).to_contain_text("Tags of rocket.jpg")   # not coffee's, still selected
        shot(page, output_dir, "3-fresh-set")

        # "add to" keeps the earlier ones; a click on a table row shows that image's bars
        page.locator("#tag-add-to input").check()
        upload(page, pictures["coffee"])
        expect(page.locator("#tag-images td.filename")).to_have_count(2)
        run.click()
        page.get_by_text("Tagged 2 of 2 images").wait_for(timeout=120_000)
        expect(page.locator("#tag-bars")).to_contain_text("Tags of rocket.jpg")
        page.locator("#tag-table").get_by_text("coffee.jpg").click()
        expect(page.locator("#tag-bars")).to_contain_text("Tags of coffee.jpg")
        shot(page, output_dir, "4-table-click")

        # a reload keeps the tab and the Convert tab's selection
        table = page.locator("#models-table")
        open_tab(page, "Convert", showing=visible(table, other, exact=True))
        remembered = page.evaluate("localStorage.getItem('imgai-page')")
        visible(table, other, exact=True).click()
        expect(page.get_by_label("Selected model")).to_have_value(other)
        # the browser has written the selection down (the page's memory changed) before the reload
        page.wait_for_function("before => localStorage.getItem('imgai-page') !== before", arg=remembered)
        page.reload(wait_until="load")
        expect(page.get_by_role("tab", name="Convert", exact=True)).to_have_attribute("aria-selected", "true",
                                                                                    timeout=30_000)
        expect(page.get_by_label("Selected model")).to_have_value(other, timeout=30_000)
        page.wait_for_timeout(3000)       # the page's timer has run since: the selection stays
        expect(page.get_by_label("Selected model")).to_have_value(other)
        shot(page, output_dir, "5-reload-keeps-convert")

        # 9. Disable says it drops the default, Tag says what to do (nothing in progress), Enable brings ★ back
        visible(table, model_id, exact=True).click()
        expect(page.get_by_label("Selected model")).to_have_value(model_id)
        page.get_by_role("button", name="Disable", exact=True).click()
        expect(page.get_by_text("no longer the default")).to_be_visible(timeout=30_000)
        open_tab(page, "Tag", showing=run)
        expect(page.locator("#tag-waiting")).to_contain_text("No model is ready to tag yet", timeout=30_000)
        expect(page.locator("#tag-waiting")).not_to_contain_text("progress")
        expect(run).to_be_disabled()
        shot(page, output_dir, "6-tag-after-disable")
        open_tab(page, "Convert", showing=page.get_by_role("button", name="Enable", exact=True))
        page.get_by_role("button", name="Enable", exact=True).click()
        expect(page.get_by_text("again, as the default")).to_be_visible(timeout=30_000)
        expect(table).to_contain_text("★")
        shot(page, output_dir, "7-enabled-default-again")
    except BaseException:
        shot(page, output_dir, "failed")
        raise
    finally:
        page.close()
