"""HTTP guards that gradio 6.17.3 lacks.

`/gradio_api/file=https://…` answers with a redirect to any outside URL (an open redirect,
gradio issue #13608, fixed only in releases we cannot install with huggingface_hub<1.0).
And `allowed_paths` (needed so a handler may return a visitor's result file from the data folder)
would also let anyone fetch any file under it by path. Gradio hands a returned file out from its
own cache, under a seeded content hash, so nothing needs the data folder served by path: the
middleware refuses `/file=` for URLs and for anything inside the data folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from imgai.config import paths

_FILE_ROUTE = re.compile(r"/file=(.*)$", re.IGNORECASE | re.DOTALL)
_OUTSIDE = re.compile(r"^\s*([a-z][a-z0-9+.\-]*:|[/\\]{2})", re.IGNORECASE)


def _inside(target: str, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(target)).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return True     # a path we cannot even resolve is not served


class RefuseFileRedirects:
    """ASGI middleware: 403 for `/file=` requests whose target is a URL rather than a file, or a
    file inside the data folder (IMGAI_HOME)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            raw = scope.get("raw_path", b"").decode("latin-1")
            for candidate in (path, unquote(unquote(raw))):
                m = _FILE_ROUTE.search(candidate)
                if m and _OUTSIDE.match(m.group(1)):
                    return await _refuse(send, b"Refused: /file= serves local files only, not URLs.")
                if m and _inside(m.group(1), paths().home.resolve()):
                    return await _refuse(send, b"Refused: the data folder is not served by path.")
        await self.app(scope, receive, send)


async def _refuse(send, body: bytes) -> None:
    await send_text(send, 403, body)


async def send_text(send, status: int, body: bytes, headers: tuple = ()) -> None:
    """A whole plain-text answer from ASGI middleware (no app behind it)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})
