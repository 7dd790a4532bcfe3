"""The fake Hub's read side: search, model info, file resolve and the LFS "CDN" (with Range and
fault injection), whoami, tree and paths-info; plus the access rules both sides share."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakehub_store import Store, lfs_pointer, now_iso, safetensors_parameters

CHUNK = 64 * 1024
REPO = "/{org}/{name}"


def hub_error(status: int, message: str, code: str | None = None, headers: dict | None = None) -> Response:
    """An error as the Hub sends it: X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound,
    GatedRepo) and X-Error-Message, which huggingface_hub turns into its typed errors."""
    h = {"X-Error-Message": message, **(headers or {})}
    if code:
        h["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=h)


class ReadApi:
    def __init__(self, store: Store):
        self.store = store

    def user_of(self, request: Request):
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None, False
        user = self.store.users().get(auth[7:].strip())
        return user, user is None          # (user, token was given but is invalid)

    def base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def readable(self, repo: dict | None, user) -> bool:
        if repo is None:
            return False
        if not repo["private"]:
            return True
        return user is not None and repo["id"].split("/")[0] in [user["name"], *user["orgs"]]

    def writable(self, repo_id: str, user) -> bool:
        return (user is not None and user["role"] == "write"
                and repo_id.split("/")[0] in [user["name"], *user["orgs"]])

    def find_repo(self, request: Request):
        """(repo, user, error response)."""
        user, bad_token = self.user_of(request)
        if bad_token:
            return None, None, hub_error(401, "Invalid credentials in Authorization header")
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        if repo_id in self.store.faults().get("rate_limit", []):
            return None, None, hub_error(429, "Too many requests", headers={"Retry-After": "7"})
        repo = self.store.repo(repo_id)
        if not self.readable(repo, user):
            return None, None, hub_error(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo, user, None

    def gate(self, repo: dict, user):
        if not repo["gated"]:
            return None
        if user is None:
            return hub_error(401, f"Access to model {repo['id']} is restricted. You must be authenticated.",
                             "GatedRepo")
        if user["name"] not in repo["approved"]:
            return hub_error(403, f"Access to model {repo['id']} is restricted and you are not in the authorized "
                                  "list.", "GatedRepo")
        return None

    def card_data(self, repo: dict, files: dict) -> dict | None:
        if "README.md" not in files:
            return None
        text = self.store.object_path(files["README.md"]["sha256"]).read_text(errors="replace")
        if not text.startswith("---"):
            return None
        import yaml

        try:
            return yaml.safe_load(text[3:text.find("\n---", 3)]) or None
        except yaml.YAMLError:
            return None

    def model_json(self, request: Request, repo: dict, sha: str, *, blobs: bool, expand: list[str] | None) -> dict:
        commit = repo["commits"][sha]
        files = commit["files"]
        config = None
        if "config.json" in files:
            try:
                full = json.loads(self.store.object_path(files["config.json"]["sha256"]).read_text())
                config = {k: full[k] for k in ("architectures", "model_type") if k in full}
            except (OSError, ValueError):
                config = None
        siblings = []
        for path, e in sorted(files.items()):
            s = {"rfilename": path}
            if blobs:
                s.update(size=e["size"], blobId=e["oid"])
                if e["lfs"]:
                    s["lfs"] = {"size": e["size"], "sha256": e["sha256"], "pointerSize": len(lfs_pointer(e["sha256"], e["size"]))}
            siblings.append(s)
        st = next((safetensors_parameters(self.store.object_path(e["sha256"]).read_bytes()[:1 << 20])
                   for p, e in files.items() if p.endswith(".safetensors") and self.store.object_path(e["sha256"]).exists()
                   and e["size"] == self.store.object_path(e["sha256"]).stat().st_size), None)
        meta = repo["meta"]
        cd = self.card_data(repo, files)
        tags = list(meta.get("tags", []))
        if cd and cd.get("license") and f"license:{cd['license']}" not in tags:
            tags.append(f"license:{cd['license']}")
        full = {"_id": hashlib.md5(repo["id"].encode()).hexdigest()[:24], "id": repo["id"], "modelId": repo["id"],
                "author": repo["id"].split("/")[0], "sha": sha, "lastModified": commit["date"],
                "private": repo["private"], "gated": repo["gated"], "disabled": False,
                "downloads": meta.get("downloads", 0), "likes": meta.get("likes", 0),
                "library_name": meta.get("library_name"), "tags": tags, "pipeline_tag": meta.get("pipeline_tag"),
                "createdAt": meta.get("createdAt"), "cardData": cd, "config": config, "siblings": siblings,
                "safetensors": st, "usedStorage": sum(e["size"] for e in files.values()), "spaces": [],
                "trendingScore": 0}
        if expand is None:
            return full
        return {k: v for k, v in full.items() if k in ("_id", "id") or k in expand}

    # -- read API ---------------------------------------------------------------------------

    async def list_models(self, request: Request):
        user, bad = self.user_of(request)
        if bad:
            return hub_error(401, "Invalid credentials in Authorization header")
        q = request.query_params
        searches = [s.lower() for s in q.getlist("search")]
        filters = q.getlist("filter")
        expand = q.getlist("expand") or None
        found = []
        for repo in self.store.all_repos():
            if not self.readable(repo, user) or "main" not in repo["refs"]:
                continue
            if any(s not in repo["id"].lower() for s in searches):
                continue
            meta = repo["meta"]
            labels = set(meta.get("tags", [])) | {meta.get("library_name"), meta.get("pipeline_tag")}
            if any(f not in labels for f in filters):
                continue
            if q.get("pipeline_tag") and meta.get("pipeline_tag") != q["pipeline_tag"]:
                continue
            if q.get("author") and repo["id"].split("/")[0] != q["author"]:
                continue
            found.append(self.model_json(request, repo, repo["refs"]["main"], blobs=False, expand=None))
        sort = q.get("sort")
        if sort in ("downloads", "likes", "lastModified", "createdAt"):
            found.sort(key=lambda m: (m.get(sort) or 0, m["id"]), reverse=q.get("direction", "-1") == "-1")
        limit = int(q.get("limit") or 5)   # small pages without a limit, so the Link pagination is exercised
        cursor = int(q.get("cursor") or 0)
        page = found[cursor:cursor + min(limit, 100)]
        default = ["_id", "id", "modelId", "likes", "downloads", "tags", "pipeline_tag", "library_name",
                   "createdAt", "private", "trendingScore"]
        keep = (expand + ["_id", "id"]) if expand else default
        body = [{k: m.get(k) for k in keep if k in m} for m in page]
        headers = {}
        if cursor + len(page) < len(found):
            params = [(k, v) for k, v in q.multi_items() if k != "cursor"] + [("cursor", str(cursor + len(page)))]
            headers["Link"] = f'<{self.base(request)}/api/models?{urlencode(params)}>; rel="next"'
        return JSONResponse(body, headers=headers)

    async def model_info(self, request: Request):
        repo, user, err = self.find_repo(request)
        if err:
            return err
        rev = request.path_params.get("rev", "main")
        sha = self.store.resolve(repo, rev)
        if sha is None:
            return hub_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        blobs = request.query_params.get("blobs") in ("True", "true", "1")
        return JSONResponse(self.model_json(request, repo, sha, blobs=blobs, expand=request.query_params.getlist("expand") or None))

    async def resolve(self, request: Request):
        repo, user, err = self.find_repo(request)
        if err:
            return err
        rev, path = request.path_params["rev"], request.path_params["path"]
        sha = self.store.resolve(repo, rev)
        if sha is None:
            return hub_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        gated = self.gate(repo, user)
        if gated:
            return gated
        entry = repo["commits"][sha]["files"].get(path)
        if entry is None:
            return hub_error(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            headers.update({"ETag": f'"{entry["sha256"]}"', "X-Linked-Etag": f'"{entry["sha256"]}"',
                            "X-Linked-Size": str(entry["size"]),
                            "Location": f"{self.base(request)}/_lfs/{entry['sha256']}?repo={repo['id']}&path={path}",
                            "Content-Length": "0"})
            return Response(status_code=302, headers=headers)
        headers["ETag"] = f'"{entry["oid"]}"'
        return self.serve_bytes(request, self.store.object_path(entry["sha256"]), headers, fault_key=f"{repo['id']}/{path}")

    async def lfs_object(self, request: Request):
        obj = self.store.object_path(request.path_params["sha"])
        if not obj.exists():
            return hub_error(404, "Object not found")
        key = f"{request.query_params.get('repo')}/{request.query_params.get('path')}"
        return self.serve_bytes(request, obj, {"ETag": f'"{obj.name}"', "Accept-Ranges": "bytes"}, fault_key=key)

    def serve_bytes(self, request: Request, obj: Path, headers: dict, *, fault_key: str) -> Response:
        total = obj.stat().st_size
        start, status = 0, 200
        rng = request.headers.get("range", "")
        if rng.startswith("bytes="):
            first = rng[6:].split("-")[0]
            start = int(first or 0)
            if start >= total and total:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{total}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{total - 1}/{total}"
        headers["Content-Length"] = str(total - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        faults = self.store.faults()
        die_after = faults.get("die_after", {}).get(fault_key)
        rate = faults.get("slow", {}).get(fault_key)

        async def body():
            sent = start
            with open(obj, "rb") as f:
                f.seek(start)
                while chunk := f.read(CHUNK):
                    if die_after is not None and sent + len(chunk) > die_after:
                        chunk = chunk[: max(0, die_after - sent)]
                        yield chunk
                        await asyncio.sleep(0.3)
                        data = self.store.faults()
                        data.get("die_after", {}).pop(fault_key, None)
                        self.store.set_faults(**data)
                        os._exit(17)   # the server dies mid-download
                    yield chunk
                    sent += len(chunk)
                    if rate:
                        await asyncio.sleep(len(chunk) / rate)

        return StreamingResponse(body(), status_code=status, headers=headers, media_type="application/octet-stream")

    async def whoami(self, request: Request):
        user, bad = self.user_of(request)
        if user is None:
            return hub_error(401, "Invalid credentials in Authorization header")
        return JSONResponse({
            "type": "user", "id": hashlib.md5(user["name"].encode()).hexdigest()[:24], "name": user["name"],
            "fullname": user["fullname"], "email": f"{user['name']}@example.com", "emailVerified": True,
            "isPro": False, "avatarUrl": f"{self.base(request)}/avatars/{user['name']}.png",
            "orgs": [{"type": "org", "name": o, "fullname": o.title(), "roleInOrg": "write"} for o in user["orgs"]],
            "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": user["role"],
                                                             "createdAt": now_iso()}}})

    # -- write API --------------------------------------------------------------------------

    def tree_entries(self, repo: dict, sha: str, prefix: str, recursive: bool) -> list[dict]:
        files = repo["commits"][sha]["files"]
        out, dirs = [], set()
        pre = prefix.rstrip("/") + "/" if prefix else ""
        for path, e in sorted(files.items()):
            if not path.startswith(pre):
                continue
            rest = path[len(pre):]
            if "/" in rest and not recursive:
                dirs.add(pre + rest.split("/")[0])
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    dirs.add(pre + "/".join(parts[:i]))
            out.append(self.file_entry_json(path, e))
        return [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                for d in sorted(dirs)] + out

    def file_entry_json(self, path: str, e: dict) -> dict:
        item = {"type": "file", "oid": e["oid"], "size": e["size"], "path": path}
        if e["lfs"]:
            item["lfs"] = {"oid": e["sha256"], "size": e["size"],
                           "pointerSize": len(lfs_pointer(e["sha256"], e["size"]))}
        return item

    async def tree(self, request: Request):
        repo, user, err = self.find_repo(request)
        if err:
            return err
        sha = self.store.resolve(repo, request.path_params["rev"])
        if sha is None:
            return hub_error(404, "Invalid rev id", "RevisionNotFound")
        recursive = request.query_params.get("recursive") in ("True", "true", "1")
        return JSONResponse(self.tree_entries(repo, sha, request.path_params.get("path", ""), recursive))

    async def paths_info(self, request: Request):
        repo, user, err = self.find_repo(request)
        if err:
            return err
        sha = self.store.resolve(repo, request.path_params["rev"])
        if sha is None:
            return hub_error(404, "Invalid rev id", "RevisionNotFound")
        form = await request.form()
        files = repo["commits"][sha]["files"]
        return JSONResponse([self.file_entry_json(p, files[p]) for p in form.getlist("paths") if p in files])

    def read_routes(self) -> list[Route]:
        return [
            Route("/api/models", self.list_models),
            Route("/api/models" + REPO, self.model_info),
            Route("/api/models" + REPO + "/revision/{rev}", self.model_info),
            Route("/api/models" + REPO + "/tree/{rev}", self.tree),
            Route("/api/models" + REPO + "/tree/{rev}/{path:path}", self.tree),
            Route("/api/models" + REPO + "/paths-info/{rev}", self.paths_info, methods=["POST"]),
            Route("/api/whoami-v2", self.whoami),
            Route("/_lfs/{sha}", self.lfs_object, methods=["GET", "HEAD"]),
            Route(REPO + "/resolve/{rev}/{path:path}", self.resolve, methods=["GET", "HEAD"]),
        ]
