"""Debian's headless Chromium for the browser tests (never `playwright install`), and signing in
to an app started the way a Hugging Face Space starts it, with the fake Hub as its OpenID provider.

Why a plain-http test carries gradio's session cookie: gradio sets it `Secure; SameSite=None`
(https_only=True). Chromium treats http://127.0.0.1 and http://localhost as potentially trustworthy
origins and keeps Secure cookies from them, so the production cookie works unchanged; from a
non-loopback http address Chromium drops it and the sign-in loops back to the provider's page.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import AppServer
from tests.hub_fixtures import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
chromium_only = pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                   reason="Debian's chromium is not installed (make test installs it)")
needs_chromium = [pytest.mark.browser, chromium_only]     # pytestmark = needs_chromium
VIEWPORT = {"width": 1400, "height": 1000}
SPACE_AUTHOR = "spaceowner"       # SPACE_AUTHOR_NAME: the Space's owner
SIGN_IN = "Sign in with Hugging Face"


def space_env(hub_url: str, *, author: str = SPACE_AUTHOR, **extra) -> dict:
    """The variables a Space with `hf_oauth: true` gets, pointed at the fake Hub (no SPACE_HOST, so
    the callback comes back to the app's own http://127.0.0.1 address; no Space token)."""
    return {"SYSTEM": "spaces", "SPACE_ID": f"{author}/imgai", "SPACE_AUTHOR_NAME": author, "SPACE_HOST": None,
            "OAUTH_CLIENT_ID": OAUTH_CLIENT_ID, "OAUTH_CLIENT_SECRET": OAUTH_CLIENT_SECRET,
            "OAUTH_SCOPES": "openid profile read-repos write-repos manage-repos", "OPENID_PROVIDER_URL": hub_url,
            "HF_ENDPOINT": hub_url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": None, "HUGGING_FACE_HUB_TOKEN": None,
            "IMGAI_NO_DEMO": "1", **extra}


def space_app(home, hub, **extra) -> AppServer:
    return AppServer(home, env=space_env(hub.url, HF_HOME=str(home.parent / f"hf_home-{home.name}"), **extra))


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request, output_dir):
    """A page that, when its test fails, leaves failed.png and the browser's console in output_dir."""
    page = browser.new_page(viewport=VIEWPORT)
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(output_dir / "failed.png"), full_page=True)
        (output_dir / "console.log").write_text("\n".join(console))
    page.close()


def visible(page, text, exact=False):
    return page.get_by_text(text, exact=exact).filter(visible=True).first


def settled(page, timeout: float = 30) -> None:
    """Wait until the page's first read has landed: the Start tab's demo status is written by a
    listener that runs after the page's load events, the opening tab's choice (unqueued) among them."""
    from playwright.sync_api import expect

    expect(page.locator("#demo-status").first).to_contain_text("demo", timeout=timeout * 1000)


def open_tab(page, name: str, *, showing=None, timeout: float = 60) -> None:
    """Click the tab `name`, once the page has settled, until `showing` (a locator; default: the tab
    is selected) holds: the page's own load event picks its opening tab (ui/start.py)."""
    import time

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    settled(page)
    tab = page.get_by_role("tab", name=name, exact=True)
    target = showing if showing is not None else page.get_by_role("tab", name=name, exact=True, selected=True)
    deadline = time.monotonic() + timeout
    while True:
        tab.click()
        try:
            target.first.wait_for(state="visible", timeout=3000)
            if showing is not None or tab.get_attribute("aria-selected") == "true":
                return
        except PlaywrightTimeout:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the {name!r} tab did not stay open")


def button(page, name: str):
    """The first visible button called `name` (the app has a Sign in button on several tabs)."""
    return page.get_by_role("button", name=name).filter(visible=True).first


def sign_in(page, app_url: str, username: str) -> None:
    """As a person would: open the app, click the Sign in button, type the username on the
    provider's page, come back signed in (the button then reads "Logout (username)")."""
    page.goto(app_url, wait_until="load")
    # the sign-in row lives on Browse; "Not signed in" there means the page's load events ran
    open_tab(page, "Browse", showing=visible(page, "Not signed in"))
    button(page, SIGN_IN).click()
    page.wait_for_url("**/oauth/authorize?**", timeout=30_000)
    page.get_by_label("Username").fill(username)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(app_url + "**", timeout=30_000)
    open_tab(page, "Browse", showing=button(page, f"Logout ({username})"))
