"""A small fake Hugging Face Hub (Starlette) serving what the real `huggingface_hub` 0.36 client
calls, so imgai's Hub code runs unmocked: `python -m tests.fakehub --root DIR --port N`.

Endpoints (model repos only):
    GET  /api/models                                   search, filter, sort, limit, expand, pagination (Link)
    GET  /api/models/{org}/{name}[/revision/{rev}]     model info (blobs=1: sizes, blob ids, LFS)
    HEAD|GET /{org}/{name}/resolve/{rev}/{path}        ETag, X-Repo-Commit; LFS: 302 + X-Linked-Etag/-Size
    GET  /_lfs/{sha256}                                LFS "CDN": Range requests (206)
    GET  /api/whoami-v2
    POST /api/repos/create, /api/models/{org}/{name}/branch/{branch}
    POST /api/validate-yaml
    POST /api/models/{org}/{name}/preupload/{rev}
    POST /{org}/{name}.git/info/lfs/objects/batch       basic transfer only (no xet, no multipart)
    PUT  /_lfs-upload/{sha256}, POST /{org}/{name}.git/info/lfs/objects/verify
    POST /api/models/{org}/{name}/commit/{rev}          ndjson: header, file, lfsFile, deletedFile
    GET  /api/models/{org}/{name}/tree/{rev}[/{path}]   recursive
    POST /api/models/{org}/{name}/paths-info/{rev}
And the OpenID provider of "Sign in with Hugging Face" (tests/fakehub_oidc.py): discovery, jwks,
authorize (a login page), token, userinfo.
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) as the Hub does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from starlette.applications import Starlette

from tests.fakehub_oidc import OidcApi
from tests.fakehub_read import ReadApi
from tests.fakehub_store import Store
from tests.fakehub_write import WriteApi


class FakeHubApi(ReadApi, WriteApi, OidcApi):
    pass


def create_app(root: Path):
    """The ASGI app over the store at `root`, logging one line per request (never the token)."""
    api = FakeHubApi(Store(root))
    app = Starlette(routes=api.read_routes() + api.write_routes() + api.oidc_routes())

    async def logged(scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            auth = "yes" if headers.get("authorization") else "no"
            api.store.log_request(f"{scope['method']} {scope['path']} range={headers.get('range', '-')} auth={auth}")
        await app(scope, receive, send)

    return logged


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.root), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
