"""The fake Hub as the OpenID provider of "Sign in with Hugging Face", as huggingface.co is for a
Space with `hf_oauth: true` (gradio's oauth.py talks to it through authlib at OPENID_PROVIDER_URL).

    GET  /.well-known/openid-configuration   discovery: issuer, endpoints, RS256
    GET  /oauth/jwks                         the RSA public key (generated when the server starts)
    GET  /oauth/authorize                    a login page: one Username field and "Sign in"
    POST /oauth/authorize                    the user picked → 302 to redirect_uri?code=…&state=…
    POST /oauth/token                        code → access token + id_token (RS256, nonce, at_hash)
    GET  /oauth/userinfo                     bearer → the user's claims

Who signs in is whatever the browser types into the login page, like a person on hf.co; only users
of the store (users.json) exist, and only registered clients (oauth_clients.json) with their secret
get tokens. The access token *is* that user's Hub token, so the app can call whoami, read gated
repos and push with it as it would with a real OAuth token. Codes are one-use and tied to the
client and redirect_uri; nothing here is logged except the request line.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from urllib.parse import unquote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CODE_TTL = 120          # seconds a code may wait for the token call
TOKEN_TTL = 8 * 3600    # what huggingface.co gives a Space's sign-in
LOGIN_PAGE = """<!doctype html><html><head><title>Sign in - Hugging Face (fake)</title></head><body>
<h1>Sign in to Hugging Face</h1><p><b>{client}</b> asks for: {scope}</p>
<form method="post" action="/oauth/authorize">{hidden}
<label for="username">Username</label> <input id="username" name="username" autocomplete="off">
<button type="submit">Sign in</button></form></body></html>"""


def oidc_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def at_hash(access_token: str) -> str:
    """OpenID Core 3.1.3.6: base64url of the left half of SHA-256 of the access token."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


class OidcApi:
    """Mixed into the fake Hub's API; uses `self.store` and `self.base(request)` from ReadApi."""

    _key = None
    _codes: dict[str, dict] = {}

    def signing_key(self):
        if OidcApi._key is None:
            from joserfc.jwk import RSAKey

            OidcApi._key = RSAKey.generate_key(2048, private=True, parameters={
                "kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"})
        return OidcApi._key

    async def discovery(self, request: Request):
        base = self.base(request)
        return JSONResponse({
            "issuer": base, "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token", "userinfo_endpoint": f"{base}/oauth/userinfo",
            "jwks_uri": f"{base}/oauth/jwks", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "read-repos", "write-repos", "manage-repos"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "name", "preferred_username", "profile", "picture", "email", "nonce"]})

    async def jwks(self, request: Request):
        return JSONResponse({"keys": [self.signing_key().as_dict(private=False)]})

    def _authorize_params(self, params) -> tuple[dict, Response | None]:
        """The request's OAuth parameters, or the error page a provider shows for a bad one."""
        keys = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce")
        p = {k: params.get(k) or "" for k in keys}
        if p["client_id"] not in self.store.oauth_clients():
            return p, oidc_error(400, "invalid_client", f"unknown client_id {p['client_id']!r}")
        if p["response_type"] != "code":
            return p, oidc_error(400, "unsupported_response_type", f"response_type {p['response_type']!r}")
        if not p["redirect_uri"].startswith(("http://", "https://")) or not p["state"]:
            return p, oidc_error(400, "invalid_request", "redirect_uri and state are required")
        if "openid" not in p["scope"].split():
            return p, oidc_error(400, "invalid_scope", f"scope {p['scope']!r} lacks openid")
        return p, None

    async def authorize_page(self, request: Request):
        p, error = self._authorize_params(request.query_params)
        if error:
            return error
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in p.items())
        return HTMLResponse(LOGIN_PAGE.format(client=html.escape(p["client_id"]), scope=html.escape(p["scope"]),
                                              hidden=hidden))

    async def authorize(self, request: Request):
        async with request.form() as form:
            p, error = self._authorize_params(form)
            username = (form.get("username") or "").strip()
        if error:
            return error
        found = self.store.user_named(username)
        if found is None:
            return HTMLResponse(f"<p>No such user: {html.escape(username)}</p>", status_code=401)
        code = secrets.token_urlsafe(24)
        OidcApi._codes[code] = {**p, "username": username, "issued": time.time()}
        sep = "&" if "?" in p["redirect_uri"] else "?"
        return RedirectResponse(p["redirect_uri"] + sep + urlencode({"code": code, "state": p["state"]}),
                                status_code=302)

    def _client_of(self, request: Request, form) -> str | None:
        """client_secret_basic or client_secret_post; None when the secret is wrong."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        known = self.store.oauth_clients().get(client_id or "")
        return client_id if known is not None and secrets.compare_digest(known, secret or "") else None

    def claims(self, request: Request, user: dict) -> dict:
        base, name = self.base(request), user["name"]
        return {"sub": hashlib.md5(name.encode()).hexdigest()[:24], "name": user["fullname"],
                "preferred_username": name, "profile": f"{base}/{name}", "picture": f"{base}/avatars/{name}.png",
                "email": f"{name}@example.com", "email_verified": True}

    async def token(self, request: Request):
        from joserfc import jwt

        async with request.form() as form:
            client_id = self._client_of(request, form)
            grant, code, redirect_uri = form.get("grant_type"), form.get("code"), form.get("redirect_uri")
        if client_id is None:
            return oidc_error(401, "invalid_client", "client authentication failed")
        if grant != "authorization_code":
            return oidc_error(400, "unsupported_grant_type", f"grant_type {grant!r}")
        issued = OidcApi._codes.pop(code or "", None)     # one use, whatever happens next
        if (issued is None or issued["client_id"] != client_id or issued["redirect_uri"] != redirect_uri
                or time.time() - issued["issued"] > CODE_TTL):
            return oidc_error(400, "invalid_grant", "the code is unknown, used, expired or for another client")
        token, user = self.store.user_named(issued["username"])
        now = int(time.time())
        claims = {**self.claims(request, user), "iss": self.base(request), "aud": client_id, "iat": now,
                  "auth_time": now, "exp": now + 3600, "nonce": issued["nonce"], "at_hash": at_hash(token)}
        key = self.signing_key()
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": TOKEN_TTL,
                             "scope": issued["scope"], "id_token": id_token},
                            headers={"Cache-Control": "no-store"})

    async def userinfo(self, request: Request):
        user, _ = self.user_of(request)
        if user is None:
            return oidc_error(401, "invalid_token", "a valid bearer token is required")
        return JSONResponse(self.claims(request, user))

    def oidc_routes(self) -> list[Route]:
        return [
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/oauth/jwks", self.jwks),
            Route("/oauth/authorize", self.authorize_page, methods=["GET"]),
            Route("/oauth/authorize", self.authorize, methods=["POST"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/userinfo", self.userinfo),
        ]
