"""Two visitors and the Space's owner, each signed in for real in their own browser (the fake Hub
is the OpenID provider), on the app started as a Space starts it.

alice downloads a model from the Hub and converts it (two jobs of hers; bob and the owner sign in
while it runs); bob sees neither the
model nor the jobs, and cannot remove alice's model through the API either (called from bob's own
page, so it carries his session cookie); the Space's owner sees it and removes it. Screenshots of
every step go to test-output/test_two_visitors_and_the_owner/.
"""

from __future__ import annotations

import re

import pytest

from tests.browser_fixtures import (SPACE_AUTHOR, VIEWPORT, browser, chromium_only, open_tab,  # noqa: F401
                                    sign_in, space_app, visible)
from tests.hub_fixtures import fake_hub_server, fake_hub_template  # noqa: F401
from tests.waiting import wait_until

OWNER_TOKEN = "hf_SpaceOwnerTestToken0123456789abcd"
REPO = "acme/resnet-tiny"

# gradio's HTTP API as a script in the page calls it: POST starts the event, GET streams its result
CALL_API = """async ([name, data]) => {
    const start = await fetch(`/gradio_api/call/${name}`, {method: "POST", headers: {"Content-Type": "application/json"},
                                                          body: JSON.stringify({data})});
    const {event_id} = await start.json();
    return await (await fetch(`/gradio_api/call/${name}/${event_id}`)).text();
}"""


@pytest.fixture
def hub(fake_hub_server):  # noqa: F811
    fake_hub_server.store.add_user(OWNER_TOKEN, SPACE_AUTHOR, fullname="The Space Owner")
    return fake_hub_server


def call_api(page, name: str, *data) -> str:
    """Call the app's endpoint `name` from `page`'s own script (its cookies: its sign-in)."""
    return page.evaluate(CALL_API, [name, list(data)])


def table_text(page) -> str:
    return page.locator("#models-table").inner_text()


def settled_table(page, owner: str) -> str:
    """The models table once it shows a refresh made after now: a model of `owner`'s own is added,
    and the page is read when that row appears (a fixed wait proves nothing on a slow page)."""
    from imgai import registry

    mark = registry.create(name=f"{owner}-marker", source=f"test:{owner}-marker", architecture="resnet18",
                           library="timm", owner=owner)
    wait_until(lambda: mark.id in table_text(page), 60, f"{owner}'s table to refresh")
    return table_text(page)


def open_convert_tab(page):
    open_tab(page, "Convert")
    visible(page, "Conversion jobs (live)").wait_for()


@pytest.mark.browser
@chromium_only
def test_two_visitors_and_the_owner(hub, browser, imgai_home, output_dir):
    from imgai import jobs, registry

    shot = iter(range(1, 100))

    def screenshot(page, name):
        page.screenshot(path=str(output_dir / f"{next(shot):02d}-{name}.png"), full_page=True)

    app = space_app(imgai_home, hub)
    alice, bob, owner = (browser.new_context(viewport=VIEWPORT).new_page() for _ in range(3))
    try:
        def signed_in(page, name):
            sign_in(page, app.url, name)
            visible(page, f"Signed in as {name}").wait_for(timeout=30_000)

        signed_in(alice, "alice")
        screenshot(alice, "alice-signed-in")

        # alice downloads a model from the Hub: it becomes hers
        alice.get_by_label("Selected repo").fill(REPO)
        alice.get_by_role("button", name="Download", exact=True).click()
        done = visible(alice, f"{REPO}@main registered as")
        done.wait_for(timeout=180_000)
        model_id = re.search(r"registered as \**([\w-]+)", done.inner_text()).group(1)
        screenshot(alice, "alice-downloaded")
        model = registry.get(model_id)
        assert model.owner == "alice"

        # ...and converts it: a job of hers, in her table
        open_convert_tab(alice)
        alice.get_by_label("Selected model").fill(model_id)
        alice.get_by_label("Selected model").press("Enter")
        alice.get_by_role("button", name="Convert to ONNX").click()
        visible(alice, "queued as job").wait_for(timeout=60_000)
        job_id = re.search(r"queued as job (\w+)", visible(alice, "queued as job").inner_text()).group(1)
        assert jobs.get(job_id).owner == "alice"
        for page, name in ((bob, "bob"), (owner, SPACE_AUTHOR)):     # while her conversion runs
            signed_in(page, name)
        wait_until(lambda: registry.get(model_id).conversion == registry.CONVERTED, 300, "alice's conversion")
        wait_until(lambda: "Converted" in table_text(alice), 30, "Converted in alice's table")
        screenshot(alice, "alice-converted")

        # bob sees neither alice's model nor her jobs
        open_convert_tab(bob)
        assert model_id not in settled_table(bob, "bob") and job_id not in bob.locator("#convert-jobs").inner_text()
        screenshot(bob, "bob-sees-nothing-of-alice")
        assert call_api(bob, "convert_refresh", None, []).count(model_id) == 0

        # bob cannot remove it through the API, with his own session, nor read her download job
        answer = call_api(bob, "remove", model_id, model_id)      # the model, and the plan it confirms
        assert "event: error" in answer and "belongs to another user" in answer, answer
        assert registry.get(model_id).type == registry.ONNX          # still there, untouched
        download_job = jobs.list_jobs(kind="download", limit=1)[0]
        peek = call_api(bob, "hub_download_status", download_job.id)
        assert "event: error" in peek and f"no job '{download_job.id}'" in peek and REPO not in peek, peek
        (output_dir / "bob-api-answers.txt").write_text(f"/remove {model_id}:\n{answer}\n"
                                                        f"/hub_download_status {download_job.id}:\n{peek}\n")

        # the Space's owner sees it and removes it, through the page
        open_convert_tab(owner)
        wait_until(lambda: model_id in table_text(owner), 30, "alice's model in the owner's table")
        screenshot(owner, "owner-sees-alices-model")
        owner.get_by_label("Selected model").fill(model_id)
        owner.get_by_label("Selected model").press("Enter")
        owner.get_by_role("button", name="Remove…").click()
        owner.get_by_role("button", name="Confirm remove").click()
        visible(owner, f"{model_id} removed with its files").wait_for(timeout=60_000)
        screenshot(owner, "owner-removed-it")
        assert model_id not in [m.id for m in registry.list_models()]
        alice.reload(wait_until="load")
        open_convert_tab(alice)
        assert model_id not in settled_table(alice, "alice")
        screenshot(alice, "alice-after-the-owner-removed-it")
    except Exception:
        for page, name in ((alice, "alice"), (bob, "bob"), (owner, "owner")):
            screenshot(page, f"failed-{name}")
        raise
    finally:
        app.stop()
