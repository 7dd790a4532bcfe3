"""The fake Hub's storage: git-like repos as JSON files plus content-addressed objects on disk.

The server (tests/fakehub.py) reads it on every request, so tests can publish repos, set faults
and read the request log while the server runs in its own process.

    root/users.json          {"tokens": {TOKEN: {"name", "fullname", "orgs", "role"}}}
    root/oauth_clients.json  {CLIENT_ID: SECRET}: the apps (Spaces) that may sign users in
    root/faults.json         {"rate_limit": [repo_id], "die_after": {"repo/path": nbytes},
                              "corrupt_commit": {repo_id: path}, "slow": {"repo/path": bytes_per_s}}
    root/requests.log        one line per request: METHOD PATH range=… auth=yes|no (never the token)
    root/objects/<sha256>    file contents
    root/repos/<org>/<name>.json
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import struct
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".data", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()


def is_lfs(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Store:
    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        (self.root / "repos").mkdir(parents=True, exist_ok=True)

    # -- json files -------------------------------------------------------------------------
    def _read(self, path: Path, default):
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return default

    def _write(self, path: Path, data) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    def users(self) -> dict:
        return self._read(self.root / "users.json", {"tokens": {}})["tokens"]

    def add_user(self, token: str, name: str, *, orgs=(), role: str = "write", fullname: str | None = None) -> None:
        data = self._read(self.root / "users.json", {"tokens": {}})
        data["tokens"][token] = {"name": name, "fullname": fullname or name.title(), "orgs": list(orgs), "role": role}
        self._write(self.root / "users.json", data)

    def user_named(self, name: str) -> tuple[str, dict] | None:
        """(token, user) of the user called `name`, or None."""
        return next(((t, u) for t, u in self.users().items() if u["name"] == name), None)

    def oauth_clients(self) -> dict:
        return self._read(self.root / "oauth_clients.json", {})

    def add_oauth_client(self, client_id: str, secret: str) -> None:
        """Register an OAuth app, as a Space with `hf_oauth: true` gets one."""
        self._write(self.root / "oauth_clients.json", {**self.oauth_clients(), client_id: secret})

    def faults(self) -> dict:
        return self._read(self.root / "faults.json", {})

    def set_faults(self, **faults) -> None:
        self._write(self.root / "faults.json", faults)

    def log_request(self, line: str) -> None:
        with open(self.root / "requests.log", "a") as f:
            f.write(line + "\n")

    def requests(self) -> list[str]:
        p = self.root / "requests.log"
        return p.read_text().splitlines() if p.exists() else []

    # -- objects and repos ------------------------------------------------------------------
    def put_object(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.root / "objects" / sha
        if not target.exists():
            tmp = target.with_name(sha + f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return sha

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def repo_path(self, repo_id: str) -> Path:
        return self.root / "repos" / f"{repo_id}.json"

    def repo(self, repo_id: str) -> dict | None:
        if repo_id.count("/") != 1 or ".." in repo_id:
            return None
        return self._read(self.repo_path(repo_id), None)

    def save_repo(self, repo: dict) -> None:
        self._write(self.repo_path(repo["id"]), repo)

    def all_repos(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted((self.root / "repos").glob("*/*.json"))]

    def create_repo(self, repo_id: str, *, private: bool = False, gated=False, approved=(), meta: dict | None = None) -> dict:
        repo = {"id": repo_id, "private": private, "gated": gated, "approved": list(approved),
                "meta": {"downloads": 0, "likes": 0, "tags": [], "createdAt": now_iso(), **(meta or {})},
                "refs": {}, "commits": {}}
        self.save_repo(repo)
        self.commit(repo_id, {".gitattributes": GITATTRIBUTES}, title="initial commit")
        return self.repo(repo_id)

    def file_entry(self, path: str, data: bytes) -> dict:
        sha = self.put_object(data)
        lfs = is_lfs(path, len(data))
        oid = git_oid(lfs_pointer(sha, len(data))) if lfs else git_oid(data)
        return {"sha256": sha, "size": len(data), "lfs": lfs, "oid": oid}

    def commit(self, repo_id: str, files: dict[str, bytes | dict], *, title: str, branch: str = "main",
               deleted=(), parent: str | None = None) -> str:
        """Add a commit: `files` maps path → bytes (or a ready file entry)."""
        repo = self.repo(repo_id)
        head = parent or repo["refs"].get(branch) or repo["refs"].get("main")
        tree = dict(repo["commits"][head]["files"]) if head else {}
        for path in deleted:
            tree.pop(path, None)
        for path, data in files.items():
            tree[path] = data if isinstance(data, dict) else self.file_entry(path, data)
        date = now_iso()
        sha = hashlib.sha1(json.dumps([head, title, date, sorted(tree.items())], sort_keys=True,
                                      default=str).encode() + os.urandom(8)).hexdigest()
        repo["commits"][sha] = {"parent": head, "title": title, "date": date, "files": tree}
        repo["refs"][branch] = sha
        self.save_repo(repo)
        return sha

    def resolve(self, repo: dict, rev: str) -> str | None:
        if rev in repo["refs"]:
            return repo["refs"][rev]
        if rev in repo["commits"]:
            return rev
        matches = [c for c in repo["commits"] if len(rev) >= 7 and c.startswith(rev)]
        return matches[0] if len(matches) == 1 else None

    def read_file(self, repo: dict, sha: str, path: str) -> bytes:
        entry = repo["commits"][sha]["files"][path]
        return self.object_path(entry["sha256"]).read_bytes()

    def publish_folder(self, repo_id: str, folder: Path, *, private: bool = False, gated=False, approved=(),
                       meta: dict | None = None, declared_sizes: dict[str, int] | None = None) -> str:
        """Create `repo_id` holding every file of `folder` (as an uploader would). `declared_sizes`
        makes the repo's metadata claim other sizes (to test the disk-space check)."""
        self.create_repo(repo_id, private=private, gated=gated, approved=approved, meta=meta)
        files: dict[str, bytes | dict] = {}
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                entry = self.file_entry(rel, p.read_bytes())
                if declared_sizes and rel in declared_sizes:
                    entry = {**entry, "size": declared_sizes[rel]}
                files[rel] = entry
        return self.commit(repo_id, files, title="Upload model")


def safetensors_parameters(data: bytes) -> dict | None:
    """{"parameters": {dtype: n}, "total": n} from a safetensors header, as the Hub shows it; None
    when the file has no readable header (the Hub then shows no safetensors metadata either)."""
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
    except (struct.error, ValueError):
        return None
    counts: dict[str, int] = {}
    for key, value in header.items():
        if key == "__metadata__":
            continue
        size = 1
        for d in value["shape"]:
            size *= d
        counts[value["dtype"]] = counts.get(value["dtype"], 0) + size
    return {"parameters": counts, "total": sum(counts.values())}
