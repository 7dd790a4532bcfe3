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
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) as the Hub does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakehub_store import Store, is_lfs, lfs_pointer, now_iso, safetensors_parameters

CHUNK = 64 * 1024


def hub_error(status: int, message: str, code: str | None = None, headers: dict | None = None) -> Response:
    h = {"X-Error-Message": message, **(headers or {})}
    if code:
        h["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=h)


def create_app(root: Path) -> Starlette:
    store = Store(root)

    def user_of(request: Request):
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None, False
        user = store.users().get(auth[7:].strip())
        return user, user is None          # (user, token was given but is invalid)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def readable(repo: dict | None, user) -> bool:
        if repo is None:
            return False
        if not repo["private"]:
            return True
        return user is not None and repo["id"].split("/")[0] in [user["name"], *user["orgs"]]

    def writable(repo_id: str, user) -> bool:
        return (user is not None and user["role"] == "write"
                and repo_id.split("/")[0] in [user["name"], *user["orgs"]])

    def find_repo(request: Request):
        """(repo, user, error response)."""
        user, bad_token = user_of(request)
        if bad_token:
            return None, None, hub_error(401, "Invalid credentials in Authorization header")
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        if repo_id in store.faults().get("rate_limit", []):
            return None, None, hub_error(429, "Too many requests", headers={"Retry-After": "7"})
        repo = store.repo(repo_id)
        if not readable(repo, user):
            return None, None, hub_error(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo, user, None

    def gate(repo: dict, user):
        if not repo["gated"]:
            return None
        if user is None:
            return hub_error(401, f"Access to model {repo['id']} is restricted. You must be authenticated.",
                             "GatedRepo")
        if user["name"] not in repo["approved"]:
            return hub_error(403, f"Access to model {repo['id']} is restricted and you are not in the authorized "
                                  "list.", "GatedRepo")
        return None

    def card_data(repo: dict, files: dict) -> dict | None:
        if "README.md" not in files:
            return None
        text = store.object_path(files["README.md"]["sha256"]).read_text(errors="replace")
        if not text.startswith("---"):
            return None
        import yaml

        try:
            return yaml.safe_load(text[3:text.find("\n---", 3)]) or None
        except yaml.YAMLError:
            return None

    def model_json(request: Request, repo: dict, sha: str, *, blobs: bool, expand: list[str] | None) -> dict:
        commit = repo["commits"][sha]
        files = commit["files"]
        config = None
        if "config.json" in files:
            try:
                full = json.loads(store.object_path(files["config.json"]["sha256"]).read_text())
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
        st = next((safetensors_parameters(store.object_path(e["sha256"]).read_bytes()[:1 << 20])
                   for p, e in files.items() if p.endswith(".safetensors") and store.object_path(e["sha256"]).exists()
                   and e["size"] == store.object_path(e["sha256"]).stat().st_size), None)
        meta = repo["meta"]
        cd = card_data(repo, files)
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
    async def list_models(request: Request):
        user, bad = user_of(request)
        if bad:
            return hub_error(401, "Invalid credentials in Authorization header")
        q = request.query_params
        searches = [s.lower() for s in q.getlist("search")]
        filters = q.getlist("filter")
        expand = q.getlist("expand") or None
        found = []
        for repo in store.all_repos():
            if not readable(repo, user) or "main" not in repo["refs"]:
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
            found.append(model_json(request, repo, repo["refs"]["main"], blobs=False, expand=None))
        sort = q.get("sort")
        if sort in ("downloads", "likes", "lastModified", "createdAt"):
            found.sort(key=lambda m: (m.get(sort) or 0, m["id"]), reverse=q.get("direction", "-1") == "-1")
        limit = int(q.get("limit") or 20)
        cursor = int(q.get("cursor") or 0)
        page = found[cursor:cursor + min(limit, 100)]
        default = ["_id", "id", "modelId", "likes", "downloads", "tags", "pipeline_tag", "library_name",
                   "createdAt", "private", "trendingScore"]
        keep = (expand + ["_id", "id"]) if expand else default
        body = [{k: m.get(k) for k in keep if k in m} for m in page]
        headers = {}
        if cursor + len(page) < len(found):
            params = [(k, v) for k, v in q.multi_items() if k != "cursor"] + [("cursor", str(cursor + len(page)))]
            headers["Link"] = f'<{base(request)}/api/models?{urlencode(params)}>; rel="next"'
        return JSONResponse(body, headers=headers)

    async def model_info(request: Request):
        repo, user, err = find_repo(request)
        if err:
            return err
        rev = request.path_params.get("rev", "main")
        sha = store.resolve(repo, rev)
        if sha is None:
            return hub_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        blobs = request.query_params.get("blobs") in ("True", "true", "1")
        return JSONResponse(model_json(request, repo, sha, blobs=blobs, expand=request.query_params.getlist("expand") or None))

    async def resolve(request: Request):
        repo, user, err = find_repo(request)
        if err:
            return err
        rev, path = request.path_params["rev"], request.path_params["path"]
        sha = store.resolve(repo, rev)
        if sha is None:
            return hub_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        gated = gate(repo, user)
        if gated:
            return gated
        entry = repo["commits"][sha]["files"].get(path)
        if entry is None:
            return hub_error(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            headers.update({"ETag": f'"{entry["sha256"]}"', "X-Linked-Etag": f'"{entry["sha256"]}"',
                            "X-Linked-Size": str(entry["size"]),
                            "Location": f"{base(request)}/_lfs/{entry['sha256']}?repo={repo['id']}&path={path}",
                            "Content-Length": "0"})
            return Response(status_code=302, headers=headers)
        headers["ETag"] = f'"{entry["oid"]}"'
        return serve_bytes(request, store.object_path(entry["sha256"]), headers, fault_key=f"{repo['id']}/{path}")

    async def lfs_object(request: Request):
        obj = store.object_path(request.path_params["sha"])
        if not obj.exists():
            return hub_error(404, "Object not found")
        key = f"{request.query_params.get('repo')}/{request.query_params.get('path')}"
        return serve_bytes(request, obj, {"ETag": f'"{obj.name}"', "Accept-Ranges": "bytes"}, fault_key=key)

    def serve_bytes(request: Request, obj: Path, headers: dict, *, fault_key: str) -> Response:
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
        faults = store.faults()
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
                        data = store.faults()
                        data.get("die_after", {}).pop(fault_key, None)
                        store.set_faults(**data)
                        os._exit(17)   # the server dies mid-download
                    yield chunk
                    sent += len(chunk)
                    if rate:
                        await asyncio.sleep(len(chunk) / rate)

        return StreamingResponse(body(), status_code=status, headers=headers, media_type="application/octet-stream")

    async def whoami(request: Request):
        user, bad = user_of(request)
        if user is None:
            return hub_error(401, "Invalid credentials in Authorization header")
        return JSONResponse({
            "type": "user", "id": hashlib.md5(user["name"].encode()).hexdigest()[:24], "name": user["name"],
            "fullname": user["fullname"], "email": f"{user['name']}@example.com", "emailVerified": True,
            "isPro": False, "avatarUrl": f"{base(request)}/avatars/{user['name']}.png",
            "orgs": [{"type": "org", "name": o, "fullname": o.title(), "roleInOrg": "write"} for o in user["orgs"]],
            "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": user["role"],
                                                             "createdAt": now_iso()}}})

    # -- write API --------------------------------------------------------------------------
    def writer(request: Request):
        user, bad = user_of(request)
        if bad or user is None:
            return None, hub_error(401, "Invalid credentials in Authorization header" if bad else
                                   "You must be authenticated")
        return user, None

    async def create_repo(request: Request):
        user, err = writer(request)
        if err:
            return err
        body = await request.json()
        if body.get("type", "model") not in (None, "model"):
            return hub_error(400, "only model repos are faked")
        repo_id = f"{body.get('organization') or user['name']}/{body['name']}"
        if not writable(repo_id, user):
            return hub_error(403, f"You don't have the rights to create a model under the namespace "
                                  f"\"{repo_id.split('/')[0]}\"")
        url = f"{base(request)}/{repo_id}"
        if store.repo(repo_id):
            return JSONResponse({"error": "You already created this model repo", "url": url}, status_code=409)
        store.create_repo(repo_id, private=bool(body.get("private")))
        return JSONResponse({"url": url, "name": repo_id, "id": hashlib.md5(repo_id.encode()).hexdigest()[:24]})

    async def create_branch(request: Request):
        repo, user, err = find_repo(request)
        if err:
            return err
        if not writable(repo["id"], user):
            return hub_error(403, "You don't have write access to this repo")
        branch = request.path_params["branch"]
        if branch in repo["refs"]:
            return hub_error(409, "Reference already exists")
        repo["refs"][branch] = repo["refs"]["main"]
        store.save_repo(repo)
        return JSONResponse({})

    async def validate_yaml(request: Request):
        import yaml

        content = (await request.json()).get("content", "")
        if content.startswith("---"):
            try:
                yaml.safe_load(content[3:content.find("\n---", 3)])
            except yaml.YAMLError as exc:
                return JSONResponse({"errors": [{"message": str(exc)}], "warnings": []}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    def writable_repo(request: Request):
        repo, user, err = find_repo(request)
        if err:
            return None, err
        if not writable(repo["id"], user):
            return None, hub_error(403, "You don't have write access to this repo")
        return repo, None

    async def preupload(request: Request):
        repo, err = writable_repo(request)
        if err:
            return err
        sha = store.resolve(repo, request.path_params["rev"])
        if sha is None:
            return hub_error(404, "Invalid rev id", "RevisionNotFound")
        current = repo["commits"][sha]["files"]
        out = []
        for f in (await request.json())["files"]:
            lfs = is_lfs(f["path"], f["size"])
            old = current.get(f["path"])
            oid = (old["sha256"] if old["lfs"] else old["oid"]) if old else None
            out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return JSONResponse({"files": out, "commitOid": sha})

    async def lfs_batch(request: Request):
        repo, err = writable_repo(request)
        if err:
            return err
        body = await request.json()
        objects = []
        for o in body["objects"]:
            entry = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if not store.object_path(o["oid"]).exists():
                entry["actions"] = {
                    "upload": {"href": f"{base(request)}/_lfs-upload/{o['oid']}"},
                    "verify": {"href": f"{base(request)}/{repo['id']}.git/info/lfs/objects/verify"}}
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")

    async def lfs_upload(request: Request):
        data = await request.body()
        if hashlib.sha256(data).hexdigest() != request.path_params["sha"]:
            return hub_error(400, "sha256 of the uploaded content does not match the oid")
        store.put_object(data)
        return Response(status_code=200)

    async def lfs_verify(request: Request):
        body = await request.json()
        obj = store.object_path(body["oid"])
        if not obj.exists() or obj.stat().st_size != body["size"]:
            return hub_error(404, "object not found or size mismatch")
        return JSONResponse({})

    async def commit(request: Request):
        repo, err = writable_repo(request)
        if err:
            return err
        branch = request.path_params["rev"]
        if branch not in repo["refs"]:
            return hub_error(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        title, files, deleted = "", {}, []
        for line in (await request.body()).splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                title = value["summary"]
                parent = value.get("parentCommit")
                if parent and parent != repo["refs"][branch]:
                    return hub_error(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                obj = store.object_path(value["oid"])
                if not obj.exists():
                    return hub_error(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                entry = {"sha256": value["oid"], "size": obj.stat().st_size, "lfs": True,
                         "oid": hashlib.sha1(b"blob %d\0" % len(lfs_pointer(value["oid"], value["size"])) +
                                             lfs_pointer(value["oid"], value["size"])).hexdigest()}
                files[value["path"]] = entry
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
        bad = store.faults().get("corrupt_commit", {}).get(repo["id"])
        if bad and bad in files:   # the Hub records something other than what was sent
            entry = files[bad] if isinstance(files[bad], dict) else store.file_entry(bad, files[bad])
            files[bad] = {**entry, "size": entry["size"] + 7, "sha256": hashlib.sha256(b"other").hexdigest(),
                          "oid": hashlib.sha1(b"other").hexdigest()}
        sha = store.commit(repo["id"], files, title=title, branch=branch, deleted=deleted)
        return JSONResponse({"success": True, "commitOid": sha, "commitUrl": f"{base(request)}/{repo['id']}/commit/{sha}",
                             "hookOutput": "", "pullRequestUrl": None})

    def tree_entries(repo: dict, sha: str, prefix: str, recursive: bool) -> list[dict]:
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
            out.append(file_entry_json(path, e))
        return [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                for d in sorted(dirs)] + out

    def file_entry_json(path: str, e: dict) -> dict:
        item = {"type": "file", "oid": e["oid"], "size": e["size"], "path": path}
        if e["lfs"]:
            item["lfs"] = {"oid": e["sha256"], "size": e["size"],
                           "pointerSize": len(lfs_pointer(e["sha256"], e["size"]))}
        return item

    async def tree(request: Request):
        repo, user, err = find_repo(request)
        if err:
            return err
        sha = store.resolve(repo, request.path_params["rev"])
        if sha is None:
            return hub_error(404, "Invalid rev id", "RevisionNotFound")
        recursive = request.query_params.get("recursive") in ("True", "true", "1")
        return JSONResponse(tree_entries(repo, sha, request.path_params.get("path", ""), recursive))

    async def paths_info(request: Request):
        repo, user, err = find_repo(request)
        if err:
            return err
        sha = store.resolve(repo, request.path_params["rev"])
        if sha is None:
            return hub_error(404, "Invalid rev id", "RevisionNotFound")
        form = await request.form()
        files = repo["commits"][sha]["files"]
        return JSONResponse([file_entry_json(p, files[p]) for p in form.getlist("paths") if p in files])

    repo = "/{org}/{name}"
    routes = [
        Route("/api/models", list_models),
        Route("/api/models" + repo, model_info),
        Route("/api/models" + repo + "/revision/{rev}", model_info),
        Route("/api/models" + repo + "/tree/{rev}", tree),
        Route("/api/models" + repo + "/tree/{rev}/{path:path}", tree),
        Route("/api/models" + repo + "/paths-info/{rev}", paths_info, methods=["POST"]),
        Route("/api/models" + repo + "/preupload/{rev}", preupload, methods=["POST"]),
        Route("/api/models" + repo + "/commit/{rev}", commit, methods=["POST"]),
        Route("/api/models" + repo + "/branch/{branch}", create_branch, methods=["POST"]),
        Route("/api/whoami-v2", whoami),
        Route("/api/repos/create", create_repo, methods=["POST"]),
        Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
        Route(repo + ".git/info/lfs/objects/batch", lfs_batch, methods=["POST"]),
        Route(repo + ".git/info/lfs/objects/verify", lfs_verify, methods=["POST"]),
        Route("/_lfs-upload/{sha}", lfs_upload, methods=["PUT"]),
        Route("/_lfs/{sha}", lfs_object, methods=["GET", "HEAD"]),
        Route(repo + "/resolve/{rev}/{path:path}", resolve, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes)

    async def logged(scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            auth = "yes" if headers.get("authorization") else "no"
            store.log_request(f"{scope['method']} {scope['path']} range={headers.get('range', '-')} auth={auth}")
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
