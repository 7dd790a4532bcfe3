"""The fake Hub's write side: create repo and branch, validate-yaml, preupload, the LFS batch API
(basic transfer only: no xet, no multipart), LFS upload and verify, and the ndjson commit."""

from __future__ import annotations

import base64
import hashlib
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakehub_read import REPO, hub_error
from tests.fakehub_store import is_lfs, lfs_pointer


class WriteApi:
    def writer(self, request: Request):
        user, bad = self.user_of(request)
        if bad or user is None:
            return None, hub_error(401, "Invalid credentials in Authorization header" if bad else
                                   "You must be authenticated")
        return user, None

    async def create_repo(self, request: Request):
        user, err = self.writer(request)
        if err:
            return err
        body = await request.json()
        if body.get("type", "model") not in (None, "model"):
            return hub_error(400, "only model repos are faked")
        repo_id = f"{body.get('organization') or user['name']}/{body['name']}"
        if not self.writable(repo_id, user):
            return hub_error(403, f"You don't have the rights to create a model under the namespace "
                                  f"\"{repo_id.split('/')[0]}\"")
        url = f"{self.base(request)}/{repo_id}"
        if self.store.repo(repo_id):
            return JSONResponse({"error": "You already created this model repo", "url": url}, status_code=409)
        self.store.create_repo(repo_id, private=bool(body.get("private")))
        return JSONResponse({"url": url, "name": repo_id, "id": hashlib.md5(repo_id.encode()).hexdigest()[:24]})

    async def create_branch(self, request: Request):
        repo, user, err = self.find_repo(request)
        if err:
            return err
        if not self.writable(repo["id"], user):
            return hub_error(403, "You don't have write access to this repo")
        branch = request.path_params["branch"]
        if branch in repo["refs"]:
            return hub_error(409, "Reference already exists")
        repo["refs"][branch] = repo["refs"]["main"]
        self.store.save_repo(repo)
        return JSONResponse({})

    async def validate_yaml(self, request: Request):
        import yaml

        content = (await request.json()).get("content", "")
        if content.startswith("---"):
            try:
                yaml.safe_load(content[3:content.find("\n---", 3)])
            except yaml.YAMLError as exc:
                return JSONResponse({"errors": [{"message": str(exc)}], "warnings": []}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    def writable_repo(self, request: Request):
        repo, user, err = self.find_repo(request)
        if err:
            return None, err
        if not self.writable(repo["id"], user):
            return None, hub_error(403, "You don't have write access to this repo")
        return repo, None

    async def preupload(self, request: Request):
        repo, err = self.writable_repo(request)
        if err:
            return err
        sha = self.store.resolve(repo, request.path_params["rev"])
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

    async def lfs_batch(self, request: Request):
        repo, err = self.writable_repo(request)
        if err:
            return err
        body = await request.json()
        objects = []
        for o in body["objects"]:
            entry = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if not self.store.object_path(o["oid"]).exists():
                entry["actions"] = {
                    "upload": {"href": f"{self.base(request)}/_lfs-upload/{o['oid']}"},
                    "verify": {"href": f"{self.base(request)}/{repo['id']}.git/info/lfs/objects/verify"}}
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")

    async def lfs_upload(self, request: Request):
        data = await request.body()
        if hashlib.sha256(data).hexdigest() != request.path_params["sha"]:
            return hub_error(400, "sha256 of the uploaded content does not match the oid")
        self.store.put_object(data)
        return Response(status_code=200)

    async def lfs_verify(self, request: Request):
        body = await request.json()
        obj = self.store.object_path(body["oid"])
        if not obj.exists() or obj.stat().st_size != body["size"]:
            return hub_error(404, "object not found or size mismatch")
        return JSONResponse({})

    async def commit(self, request: Request):
        repo, err = self.writable_repo(request)
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
                obj = self.store.object_path(value["oid"])
                if not obj.exists():
                    return hub_error(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                entry = {"sha256": value["oid"], "size": obj.stat().st_size, "lfs": True,
                         "oid": hashlib.sha1(b"blob %d\0" % len(lfs_pointer(value["oid"], value["size"])) +
                                             lfs_pointer(value["oid"], value["size"])).hexdigest()}
                files[value["path"]] = entry
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
        bad = self.store.faults().get("corrupt_commit", {}).get(repo["id"])
        if bad and bad in files:   # the Hub records something other than what was sent
            entry = files[bad] if isinstance(files[bad], dict) else self.store.file_entry(bad, files[bad])
            files[bad] = {**entry, "size": entry["size"] + 7, "sha256": hashlib.sha256(b"other").hexdigest(),
                          "oid": hashlib.sha1(b"other").hexdigest()}
        sha = self.store.commit(repo["id"], files, title=title, branch=branch, deleted=deleted)
        return JSONResponse({"success": True, "commitOid": sha, "commitUrl": f"{self.base(request)}/{repo['id']}/commit/{sha}",
                             "hookOutput": "", "pullRequestUrl": None})

    def write_routes(self) -> list[Route]:
        return [
            Route("/api/repos/create", self.create_repo, methods=["POST"]),
            Route("/api/validate-yaml", self.validate_yaml, methods=["POST"]),
            Route("/api/models" + REPO + "/preupload/{rev}", self.preupload, methods=["POST"]),
            Route("/api/models" + REPO + "/commit/{rev}", self.commit, methods=["POST"]),
            Route("/api/models" + REPO + "/branch/{branch}", self.create_branch, methods=["POST"]),
            Route(REPO + ".git/info/lfs/objects/batch", self.lfs_batch, methods=["POST"]),
            Route(REPO + ".git/info/lfs/objects/verify", self.lfs_verify, methods=["POST"]),
            Route("/_lfs-upload/{sha}", self.lfs_upload, methods=["PUT"]),
        ]
