"""Real "Sign in with Hugging Face", all offline: the fake Hub is the OpenID provider
(tests/fakehub_oidc.py), the app runs as a Space runs it (SYSTEM=spaces, SPACE_ID, OAUTH_*), and
gradio's own OAuth code (authlib) does discovery, the code exchange and the id_token checks."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser_fixtures import (SIGN_IN, VIEWPORT, browser, button, chromium_only, open_tab,  # noqa: F401
                                    sign_in, space_app, visible)
from tests.fakehub_store import Store
from tests.hub_fixtures import (ALICE_TOKEN, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, fake_hub_server,  # noqa: F401
                                fake_hub_template)

APP_CALLBACK = "http://app.test/login/callback?_target_url=%2F"


@pytest.fixture
def provider(tmp_path):
    """The fake Hub in-process (no models): alice and one registered OAuth app."""
    from starlette.testclient import TestClient

    from tests.fakehub import create_app

    store = Store(tmp_path)
    store.add_user(ALICE_TOKEN, "alice", orgs=["acme"], fullname="Alice Liddell")
    store.add_oauth_client(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET)
    with TestClient(create_app(tmp_path), base_url="http://hub.test") as client:
        yield client


def authorize(provider, username: str, **overrides):
    params = {"client_id": OAUTH_CLIENT_ID, "redirect_uri": APP_CALLBACK, "response_type": "code",
              "scope": "openid profile", "state": "state-1", "nonce": "nonce-1", **overrides}
    return provider.post("/oauth/authorize", data={**params, "username": username}, follow_redirects=False)


def exchange(provider, code: str, *, secret: str = OAUTH_CLIENT_SECRET, redirect_uri: str = APP_CALLBACK):
    return provider.post("/oauth/token", auth=(OAUTH_CLIENT_ID, secret),
                         data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})


def test_the_fake_provider_speaks_openid_connect_as_authlib_checks_it(provider):
    from joserfc.errors import InvalidClaimError
    from authlib.oidc.core import CodeIDToken
    from joserfc import jwt
    from joserfc.jwk import KeySet

    meta = provider.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == "http://hub.test" and meta["id_token_signing_alg_values_supported"] == ["RS256"]
    page = provider.get(meta["authorization_endpoint"], params={
        "client_id": OAUTH_CLIENT_ID, "redirect_uri": APP_CALLBACK, "response_type": "code",
        "scope": "openid profile", "state": "s", "nonce": "n"})
    assert page.status_code == 200 and 'name="username"' in page.text

    back = authorize(provider, "alice")
    assert back.status_code == 302
    location = urlparse(back.headers["location"])
    query = parse_qs(location.query)
    assert location.path == "/login/callback" and query["state"] == ["state-1"] and query["_target_url"] == ["/"]
    code = query["code"][0]

    assert exchange(provider, code, secret="wrong").json()["error"] == "invalid_client"
    assert exchange(provider, code, redirect_uri="http://evil.test/cb").json()["error"] == "invalid_grant"
    code = parse_qs(urlparse(authorize(provider, "alice").headers["location"]).query)["code"][0]
    token = exchange(provider, code).json()
    assert exchange(provider, code).json()["error"] == "invalid_grant"          # a code is one use
    assert token["access_token"] == ALICE_TOKEN and token["expires_in"] > 3600

    # the id_token as gradio's authlib validates it: RS256 from jwks_uri, issuer, audience, nonce, at_hash
    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(provider.get(meta["jwks_uri"]).json()))
    params = {"nonce": "nonce-1", "client_id": OAUTH_CLIENT_ID, "access_token": token["access_token"]}
    claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"values": [meta["issuer"]]}}, params)
    claims.validate(leeway=120)
    assert (claims["preferred_username"], claims["name"]) == ("alice", "Alice Liddell")
    assert claims["picture"].endswith("/avatars/alice.png") and claims["profile"] == "http://hub.test/alice"
    with pytest.raises(InvalidClaimError, match="nonce"):
        CodeIDToken(decoded.claims, decoded.header, None, {**params, "nonce": "replayed"}).validate(leeway=120)

    bearer = {"authorization": f"Bearer {token['access_token']}"}
    assert provider.get(meta["userinfo_endpoint"], headers=bearer).json()["preferred_username"] == "alice"
    assert provider.get("/api/whoami-v2", headers=bearer).json()["name"] == "alice"


@pytest.mark.parametrize("username, overrides, status, error", [
    ("mallory", {}, 401, None),                                       # no such user on the Hub
    ("alice", {"client_id": "someone-else"}, 400, "invalid_client"),
    ("alice", {"scope": "profile"}, 400, "invalid_scope"),
    ("alice", {"response_type": "token"}, 400, "unsupported_response_type"),
    ("alice", {"state": ""}, 400, "invalid_request"),
])
def test_the_fake_provider_refuses_what_huggingface_co_refuses(provider, username, overrides, status, error):
    response = authorize(provider, username, **overrides)
    assert response.status_code == status
    if error:
        assert response.json()["error"] == error


@pytest.mark.browser
@chromium_only
def test_sign_in_with_the_login_button_as_on_a_space(fake_hub_server, browser, tmp_path, output_dir):  # noqa: F811
    app = space_app(tmp_path / "home", fake_hub_server)
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(app.url, wait_until="load")
        open_tab(page, "Browse", showing=visible(page, "Not signed in (sign in with the Hugging Face button)"))
        sign_in(page, app.url, "alice")
        # the visitor's OAuth token is alice's Hub token: the app's whoami through the fake Hub knows her
        visible(page, "Signed in as alice (can push, via visitor)").wait_for(timeout=30_000)
        page.screenshot(path=str(output_dir / "signed-in.png"), full_page=True)
        session = next(c for c in context.cookies() if c["name"] == "session")
        assert session["secure"] and session["httpOnly"] and session["sameSite"] == "None"   # production flags

        page.reload(wait_until="load")                      # the sign-in lives in the cookie, not the page
        open_tab(page, "Browse", showing=button(page, "Logout (alice)"))
        button(page, "Logout (alice)").click()
        page.wait_for_url(app.url + "**", timeout=30_000)
        open_tab(page, "Browse", showing=button(page, SIGN_IN))
        visible(page, "Not signed in").wait_for(timeout=30_000)
        page.screenshot(path=str(output_dir / "signed-out.png"), full_page=True)
    finally:
        app.stop()
    requests = fake_hub_server.requests()
    assert any(r.startswith("POST /oauth/token") for r in requests)
    assert any(r.startswith("GET /oauth/jwks") for r in requests)
