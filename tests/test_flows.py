"""The app as people meet it, in a real headless Chromium, one test per flow: the first start,
a model added in Browse reaching Convert and Tag without a reload, train → convert → tag, a reload
in the middle of a quantize run, Remove with its confirmation, and the INT8 panel following the
selected model. Each keeps screenshots under
test-output/<test>/ (looked at when the flow changes)."""

from __future__ import annotations

import os
import re

import pytest

from tests.browser_fixtures import VIEWPORT, browser, needs_chromium, page, settled, visible  # noqa: F401 (fixture)
from tests.conftest import AppServer
from tests.diffusion_fixtures import tiny_sources  # noqa: F401 (fixture)
from tests.train_fixtures import make_shapes, one_thread  # noqa: F401 (fixture)

pytestmark = [*needs_chromium, pytest.mark.slow]
LONG = 300_000   # ms: a conversion or a short training on a loaded 2-core machine


@pytest.fixture
def held_demo_server(tmp_path, monkeypatch):
    """`python app.py` on its first start, with the demo's preparation held back behind another job
    (one job runs at a time) until the test lets it go: `release()`. A warm worker prepares the demo
    in seconds, often before a browser opens; held, the page meets it being prepared every time."""
    from imgai import jobs

    home = tmp_path / "app_home"
    monkeypatch.setenv("IMGAI_HOME", str(home))
    blocker = jobs.submit("selftest", {"steps": 1, "delay": 600})
    server = AppServer(home, env={"IMGAI_MAX_JOBS": "1"})

    def release():
        jobs.cancel(blocker.id)

    server.release = release
    yield server
    server.stop()


def open_app(page, url):
    """Open the page and wait until it has settled: the opening tab chosen, the lists read."""
    page.goto(url, wait_until="load")
    settled(page)


def tab(page, name):
    page.get_by_role("tab", name=name, exact=True).click()


def pick(page, label, option):
    """Choose `option` in the gradio dropdown labelled `label`."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).first.click()


def upload(page, *files):
    """Give the Tag tab's Images these files and wait until each is listed (the uploaded row: the
    name also shows, briefly, while it uploads, and a wait on that text can miss it)."""
    from playwright.sync_api import expect

    page.locator("#tag-images input[type=file]").set_input_files([str(f) for f in files])
    for f in files:
        expect(page.locator(f'#tag-images td.filename[aria-label="{f.name}"]')).to_be_visible(timeout=30_000)


def shot(page, folder, name):
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_first_start_tags_without_visiting_convert(held_demo_server, page, photos, output_dir):
    """A newcomer lands on Start, sees the demo being prepared, and tags a photo from there."""
    from playwright.sync_api import expect

    open_app(page, held_demo_server.url)
    expect(page.get_by_role("tab", name="Start", exact=True)).to_have_attribute("aria-selected", "true")
    visible(page, "The demo model").wait_for()
    go = page.get_by_role("button", name="Tag a photo with the demo →")
    expect(go).to_be_disabled()
    shot(page, output_dir, "1-start-preparing")
    held_demo_server.release()
    expect(go).to_be_enabled(timeout=LONG)
    visible(page, "is ready: tag a photo with it").wait_for()
    shot(page, output_dir, "2-start-ready")
    go.click()
    expect(page.get_by_label("Model", exact=True)).to_have_value(
        "EfficientNet-Lite0 ImageNet (demo)", timeout=10_000)
    upload(page, photos["coffee"])
    page.get_by_role("button", name="Tag", exact=True).click()
    page.get_by_text("Tagged 1 of 1 images").wait_for(timeout=60_000)
    bars = page.locator("#tag-bars").first
    expect(bars).to_contain_text("espresso")
    shot(page, output_dir, "3-tagged")

    page.reload(wait_until="load")     # with a model ready, the app opens on Tag
    expect(page.get_by_role("tab", name="Tag", exact=True)).to_have_attribute("aria-selected", "true",
                                                                            timeout=15_000)
    tab(page, "Convert")                # the demo as the Convert tab shows it: converted, validated, default
    visible(page, "Converted", exact=True).wait_for(timeout=15_000)
    visible(page, "passed").wait_for()
    shot(page, output_dir, "4-convert")


def test_added_in_browse_reaches_convert_and_tag_without_reload(bare_server, page, tiny_model_cache, photos,
                                                                output_dir):
    from playwright.sync_api import expect

    folder = tiny_model_cache("timm-resnet")
    open_app(page, bare_server.url)
    tab(page, "Convert")
    visible(page, "Select a model in the table.").wait_for()
    tab(page, "Browse")
    page.get_by_label("Hub id or local folder", exact=True).fill(str(folder))
    page.get_by_label("Name (optional)", exact=True).fill("tiny resnet")
    page.get_by_role("button", name="Add model").click()
    visible(page, "Added tiny-resnet as PyTorch / NotConverted").wait_for(timeout=60_000)
    shot(page, output_dir, "1-browse-added")

    tab(page, "Convert")
    visible(page, "tiny-resnet", exact=True).wait_for(timeout=10_000)     # no reload, no tab dance
    expect(page.get_by_label("Selected model", exact=True)).to_have_value("tiny-resnet", timeout=10_000)
    page.get_by_role("button", name="Convert to ONNX").click()
    visible(page, "Converted", exact=True).wait_for(timeout=LONG)
    visible(page, "Ready to tag").wait_for(timeout=10_000)
    shot(page, output_dir, "2-convert-converted")

    tab(page, "Tag")
    # the Tag tab's Model field shows a model's name alone (issue 23), the id only where it has no name
    expect(page.get_by_label("Model", exact=True)).to_have_value("tiny resnet", timeout=10_000)
    upload(page, photos["chelsea"])
    page.get_by_role("button", name="Tag", exact=True).click()
    page.get_by_text("Tagged 1 of 1 images").wait_for(timeout=60_000)
    shot(page, output_dir, "3-tagged")


@pytest.mark.usefixtures("one_thread")
def test_train_convert_tag(bare_server, page, tmp_path, output_dir):
    from playwright.sync_api import expect

    data = make_shapes(tmp_path / "shapes", per_class=10, size=32)
    open_app(page, bare_server.url)
    tab(page, "Train")
    pick(page, "Architecture", "mobilenet_v3_small")
    page.get_by_label("Model name", exact=True).fill("shapes tagger")
    page.get_by_role("button", name="Create model (untrained)").click()
    visible(page, "untrained").wait_for(timeout=30_000)

    page.get_by_text("2. Data pipelines").click()
    expect(page.get_by_label("Hub dataset id (imagefolder, from the local cache)")).to_be_hidden()
    page.get_by_label("Pipeline name", exact=True).fill("shapes")
    page.get_by_label("Folder (one subfolder per class)", exact=True).fill(str(data))
    page.get_by_role("button", name="Create data pipeline").click()
    visible(page, "Ready to train").wait_for(timeout=60_000)

    expect(page.get_by_label("Model", exact=True)).to_have_value(re.compile("shapes tagger"), timeout=10_000)
    pick(page, "Data Source", "shapes")
    page.get_by_text("Advanced Settings").click()
    page.get_by_label("Epochs", exact=True).fill("2")
    page.get_by_label("Image size", exact=True).last.fill("32")
    page.get_by_role("button", name="Train", exact=True).click()
    visible(page, "2/2").wait_for(timeout=LONG)
    shot(page, output_dir, "1-training")
    expect(page.locator("#loss-curve circle")).to_have_count(4, timeout=20_000)   # 2 epochs × train/validation
    shot(page, output_dir, "1-trained")

    tab(page, "Convert")
    visible(page, "shapes-tagger", exact=True).wait_for(timeout=10_000)
    pick(page, "Selected model", "shapes-tagger")
    page.get_by_role("button", name="Convert to ONNX").click()
    visible(page, "Converted", exact=True).wait_for(timeout=LONG)
    visible(page, "Ready to tag").wait_for(timeout=10_000)
    shot(page, output_dir, "2-converted")

    tab(page, "Tag")
    expect(page.get_by_label("Model", exact=True).filter(visible=True)).to_have_value("shapes tagger",
                                                                                   timeout=10_000)
    upload(page, *sorted((data / "circle").glob("*.png"))[:2])
    page.get_by_role("button", name="Tag", exact=True).click()
    page.get_by_text("Tagged 2 of 2 images").wait_for(timeout=60_000)
    expect(page.locator("#tag-bars").first).to_contain_text(re.compile("circle|square|triangle"))
    shot(page, output_dir, "3-tagged")


def set_up_tiny_flux(page, tiny_sources):
    page.get_by_label("sd15", exact=True).uncheck()
    page.get_by_label("flux1", exact=True).check()
    page.get_by_label("Source (optional)", exact=True).fill(os.fspath(tiny_sources["flux1"]))
    page.get_by_text("Check and upload").click()
    page.get_by_label("Check steps (0: the key's default)", exact=True).fill("2")
    page.get_by_label("Check size WxH (empty: the key's default)", exact=True).fill("32x32")


def test_reload_mid_quantize_brings_back_the_job_and_outputs(bare_server, page, tiny_sources, output_dir):
    from playwright.sync_api import expect

    open_app(page, bare_server.url)
    tab(page, "Quantize")
    set_up_tiny_flux(page, tiny_sources)
    visible(page, "will run").wait_for(timeout=20_000)
    page.get_by_role("button", name="Quantize", exact=True).click()
    job_box = page.get_by_label("Selected job", exact=True)
    expect(job_box).not_to_have_value("", timeout=20_000)
    job_id = job_box.input_value()
    shot(page, output_dir, "1-running")

    open_app(page, bare_server.url)          # a reload, waited until the page has settled
    tab(page, "Quantize")
    expect(page.get_by_label("Selected job", exact=True)).to_have_value(job_id, timeout=15_000)
    expect(page.locator("#quantize-jobs").last).to_contain_text(job_id)     # in the jobs table
    progress = page.locator("#quantize-progress").last
    expect(progress).to_contain_text(job_id)
    shot(page, output_dir, "2-after-reload")
    expect(progress).to_contain_text("succeeded", timeout=LONG)
    expect(page.get_by_label("Converted model", exact=True)).to_have_value("flux1-torch-int8", timeout=15_000)

    open_app(page, bare_server.url)          # a reload, waited until the page has settled
    tab(page, "Quantize")
    expect(page.get_by_label("Converted model", exact=True)).to_have_value("flux1-torch-int8", timeout=15_000)
    set_up_tiny_flux(page, tiny_sources)
    visible(page, "up to date").wait_for(timeout=60_000)      # the same settings again: the plan says so
    shot(page, output_dir, "3-reloaded-done")
    grid = page.locator("#quantize-images").last       # original / converted pairs, captions whole
    expect(grid).to_contain_text("original")
    expect(grid).to_contain_text("converted")
    grid.scroll_into_view_if_needed()
    shot(page, output_dir, "4-images")


def test_remove_asks_first_and_says_what_it_deletes(bare_server, page, tiny_model_cache, output_dir):
    from playwright.sync_api import expect

    folder = tiny_model_cache("timm-resnet")
    open_app(page, bare_server.url)
    tab(page, "Browse")
    page.get_by_label("Hub id or local folder", exact=True).fill(str(folder))
    page.get_by_role("button", name="Add model").click()
    tab(page, "Convert")
    expect(page.get_by_label("Selected model", exact=True)).to_have_value(folder.name, timeout=15_000)
    page.get_by_role("button", name="Remove…").click()
    confirm = page.locator("#confirm-remove").last   # gradio nests two divs with the id
    expect(confirm).to_contain_text("This deletes:")
    expect(confirm).to_contain_text(str(bare_server.home / "models" / folder.name))
    shot(page, output_dir, "1-confirm")
    page.get_by_role("button", name="Keep it").click()
    expect(confirm).to_be_hidden()
    visible(page, "Nothing removed.").wait_for()
    assert (bare_server.home / "models" / folder.name).is_dir()

    page.get_by_role("button", name="Remove…").click()
    page.get_by_role("button", name="Confirm remove").click()
    visible(page, "removed with its files").wait_for(timeout=15_000)
    expect(confirm).to_be_hidden()
    shot(page, output_dir, "2-removed")
    assert not (bare_server.home / "models" / folder.name).exists()


def test_the_int8_panel_follows_the_selected_model(tmp_path, monkeypatch, page, tiny_model_cache, output_dir):
    """Convert tab: the INT8 panel shows the selected model's INT8 copy (its figures and the near-ties
    among its flips) and changes with the selection, not only when a job moves."""
    from playwright.sync_api import expect

    from imgai.classify.convert import convert
    from imgai.classify.quantize import QuantizeOptions, quantize
    from imgai.sources import add_model

    home = tmp_path / "home"
    monkeypatch.setenv("IMGAI_HOME", str(home))
    monkeypatch.setenv("IMGAI_NO_DEMO", "1")
    first = convert(add_model(str(tiny_model_cache("timm-resnet")), name="first").id)
    second = convert(add_model(str(tiny_model_cache("timm-mobilenetv3")), name="second").id)
    copy = quantize(first.id, options=QuantizeOptions(method="minmax", budget=0.01, min_speedup=0.01))
    server = AppServer(home, env={"IMGAI_NO_DEMO": "1"})
    try:
        open_app(page, server.url)
        tab(page, "Convert")
        page.get_by_text("INT8 options and result").click()
        panel = page.locator("#int8-panel").last

        def select(model_id):
            page.get_by_label("Selected model", exact=True).click()
            page.get_by_role("option", name=model_id, exact=True).click()

        select(second.id)
        expect(panel).not_to_contain_text(copy.id, timeout=10_000)
        select(first.id)
        expect(panel).to_contain_text(f"{copy.id}: {'enabled' if copy.enabled else 'not enabled'}", timeout=10_000)
        expect(panel).to_contain_text("held-back views of 12 photos")
        shot(page, output_dir, "1-int8-panel")
        select(second.id)
        expect(panel).not_to_contain_text(copy.id, timeout=10_000)
    finally:
        server.stop()
