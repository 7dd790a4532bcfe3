"""Once in a real headless Chromium (Debian's), as a person would: open the page, convert the demo
model, upload a photo, see its tags. Screenshots of every tab are kept under test-output/."""

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (make test installs it)")]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def visible(page, text, exact=False):
    return page.get_by_text(text, exact=exact).filter(visible=True).first


@pytest.fixture
def page(output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


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
