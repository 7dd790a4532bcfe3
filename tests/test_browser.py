"""Once in a real headless Chromium (Debian's), as a person would: open the page, convert the demo
model, upload a photo, see its tags. Screenshots of every tab are kept under test-output/."""

import pytest

from tests.browser_fixtures import VIEWPORT, browser, needs_chromium, visible  # noqa: F401 (fixture)

pytestmark = needs_chromium


@pytest.fixture
def page(browser):
    return browser.new_page(viewport=VIEWPORT)


def test_convert_the_demo_and_tag_a_photo(app_server, page, photos, output_dir):
    page.goto(app_server.url, wait_until="load")
    page.get_by_role("tab", name="Convert").click()
    visible(page, "efficientnet-lite0-demo").wait_for()
    page.get_by_role("button", name="Convert to ONNX").click()
    visible(page, "Converted", exact=True).wait_for(timeout=240_000)
    visible(page, "passed").wait_for()
    page.screenshot(path=str(output_dir / "convert.png"), full_page=True)

    page.get_by_role("tab", name="Browse").click()
    page.screenshot(path=str(output_dir / "browse.png"), full_page=True)

    page.get_by_role("tab", name="Tag").click()
    from playwright.sync_api import expect

    expect(page.get_by_label("Model", exact=True)).to_have_value(
        "EfficientNet-Lite0 ImageNet (demo) (efficientnet-lite0-demo)", timeout=10_000)
    page.locator("#tag-images input[type=file]").set_input_files(str(photos["coffee"]))
    visible(page, "coffee.jpg").wait_for()
    page.get_by_role("button", name="Tag", exact=True).click()
    page.get_by_text("Tagged 1 of 1 images").wait_for(timeout=60_000)
    visible(page, "espresso").wait_for()
    page.screenshot(path=str(output_dir / "tag.png"), full_page=True)
    assert (output_dir / "tag.png").stat().st_size > 10_000
