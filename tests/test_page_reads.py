"""Only the open tab reads (ui/page.py): while a job moves the page's revision, the hidden tabs'
lists send no event; a tab reads when it is opened, and what a tab reads once (Browse's Hub
status) waits for its first opening. Watched from Chromium, by the events the page
itself sends (each queued event is a POST to gradio_api/queue/join naming its fn_index)."""

from __future__ import annotations

import json

import pytest

from tests.browser_fixtures import browser, chromium_only, open_tab, page, settled  # noqa: F401 (fixtures)
from tests.conftest import AppServer
from tests.waiting import wait_until


def waiting_in(page, condition, timeout: float, what: str):
    """wait_until, letting Playwright deliver the page's events meanwhile (its sync API only does
    so inside its own calls)."""
    def check():
        page.wait_for_timeout(200)
        return condition()

    return wait_until(check, timeout, what, every=0)


@pytest.mark.browser
@chromium_only
def test_only_the_open_tab_reads_while_a_job_moves_the_revision(page, imgai_home):  # noqa: F811
    from imgai import jobs

    server = AppServer(imgai_home, env={"IMGAI_NO_DEMO": "1"})
    try:
        sent: list[int] = []
        page.on("request", lambda r: sent.append(json.loads(r.post_data)["fn_index"])
                if "queue/join" in r.url else None)
        page.goto(server.url)
        settled(page)                    # on Start: nothing to tag yet
        config = page.request.get(server.url + "config").json()
        endpoint = {dep["api_name"]: dep["id"] for dep in config["dependencies"] if dep.get("api_name")}
        status, tag_lists, convert_lists = endpoint["demo_status"], endpoint["tag_models"], endpoint["convert_refresh"]
        hub_start = endpoint["hub_start"]
        assert hub_start not in sent                   # Browse's once-a-page read waits for Browse

        sent.clear()
        job = jobs.submit("selftest", {"steps": 40, "delay": 0.3})     # a progress report every 0.3 s
        # the Start tab's status reads on every move: four reads are three moves the page has seen
        waiting_in(page, lambda: sent.count(status) >= 4, 60, "the page to see the job move its revision")
        assert sent.count(tag_lists) == sent.count(convert_lists) == 0, sent

        open_tab(page, "Convert")
        waiting_in(page, lambda: convert_lists in sent, 30, "the Convert tab to read when opened")
        assert tag_lists not in sent
        opened = sent.count(convert_lists)
        waiting_in(page, lambda: sent.count(convert_lists) > opened, 30,
                   "the open Convert tab to read on the next move")
        assert tag_lists not in sent
        jobs.cancel(job.id)

        for _ in range(2):                             # opened twice, read once
            open_tab(page, "Browse")
            waiting_in(page, lambda: hub_start in sent, 30, "Browse's first opening to read the Hub status")
            open_tab(page, "Convert")
        assert sent.count(hub_start) == 1
    finally:
        server.stop()


@pytest.fixture
def growing_table():
    """A page (ui.page.Page) whose one table gets 1 row, then 2 (buttons "one", "two")."""
    import gradio as gr

    from tests.conftest import served
    from ui.page import Page

    with gr.Blocks() as demo:
        Page(demo, standalone=True)
        table = gr.Dataframe(headers=["Image", "Tags"], interactive=False, elem_id="growing")
        one, two = gr.Button("one"), gr.Button("two")
        one.click(lambda: [["a.jpg", "x"]], None, table, api_name=False)
        two.click(lambda: [["a.jpg", "x"], ["b.jpg", "y"]], None, table, api_name=False)
    with served(demo) as url:
        yield url


@pytest.mark.browser
@chromium_only
def test_a_table_that_gains_rows_draws_them(page, growing_table):  # noqa: F811
    """gradio 6.17.3's Dataframe draws the rows of a later change in their number only when something
    scrolls or resizes it (gradio PR #13744): in this bare page, a second row never appeared, and in
    the Tag tab it raced with the layout. The page's script makes every visible table read its rows
    when a table changes, and only then."""
    from playwright.sync_api import expect

    page.goto(growing_table)
    table = page.locator("#growing")
    for _ in range(3):
        page.get_by_role("button", name="one", exact=True).click()
        cell = lambda text: table.get_by_role("button", name=text, exact=True)  # noqa: E731 (a cell's text)
        expect(cell("a.jpg")).to_be_visible(timeout=10_000)
        expect(cell("b.jpg")).to_have_count(0)
        page.get_by_role("button", name="two", exact=True).click()
        expect(cell("b.jpg")).to_be_visible(timeout=5_000)
    # the redraw's own changes do not ask again: an idle page draws nothing
    page.wait_for_timeout(1_000)
    before = page.evaluate("() => window.imgaiTableDraws")
    page.wait_for_timeout(2_000)
    assert before > 0 and page.evaluate("() => window.imgaiTableDraws") == before
