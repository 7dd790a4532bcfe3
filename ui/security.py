"""HTTP guards that gradio 6.17.3 lacks.

`/gradio_api/file=https://…` answers with a redirect to any outside URL (an open redirect,
gradio issue #13608, fixed only in releases we cannot install with huggingface_hub<1.0).
The middleware refuses such requests before gradio sees them.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_FILE_ROUTE = re.compile(r"/file=(.*)$", re.IGNORECASE | re.DOTALL)
_OUTSIDE = re.compile(r"^\s*([a-z][a-z0-9+.\-]*:|[/\\]{2})", re.IGNORECASE)


class RefuseFileRedirects:
    """ASGI middleware: 403 for `/file=` requests whose target is a URL rather than a file."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            raw = scope.get("raw_path", b"").decode("latin-1")
            for candidate in (path, unquote(unquote(raw))):
                m = _FILE_ROUTE.search(candidate)
                if m and _OUTSIDE.match(m.group(1)):
                    body = b"Refused: /file= serves local files only, not URLs."
                    await send({"type": "http.response.start", "status": 403,
                                "headers": [(b"content-type", b"text/plain"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
