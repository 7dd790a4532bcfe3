"""Upload a folder to a Hub model repo in one commit, then verify what the Hub holds.

`push_folder` is THE upload function: the classifier push and the diffusion converter both call
it with a folder that already holds its card (README.md). After the commit, the remote file list,
sizes, LFS sha256 (large files) and git blob ids (small files) must match what was sent; a
mismatch is an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ConfigError, PushVerificationError
from ..hub_id import split_revision
from ..log import get_logger
from .auth import require_token
from .client import api, endpoint, hub_errors
from .support import human_size

LOG = get_logger("imgai.hub")
SKIP_DIRS = {".git", ".cache", "__pycache__", ".ipynb_checkpoints"}


@dataclass
class PushedFile:
    path: str
    size: int
    sha256: str
    git_oid: str          # git blob id of the content (what the Hub reports for small files)


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit_oid: str
    commit_url: str
    url: str
    private: bool
    files: list[PushedFile] = field(default_factory=list)
    verified: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _hash_file(path: Path) -> tuple[int, str, str]:
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    git = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha256.update(chunk)
            git.update(chunk)
    return size, sha256.hexdigest(), git.hexdigest()


def local_files(folder: Path) -> list[tuple[str, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder; push_folder uploads a folder's files")
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]) or not path.is_file():
            continue
        out.append((rel.as_posix(), path))
    if not out:
        raise ConfigError(f"{folder} holds no files to push")
    return out


def push_folder(folder: Path, repo_id: str, *, token: str | None = None, private: bool = False,
                revision: str | None = None, commit_message: str | None = None) -> PushResult:
    """Create `repo_id` if needed, upload every file of `folder` in one commit to `revision`
    (a branch, created from main if missing), and verify the result."""
    from huggingface_hub import CommitOperationAdd

    split_revision(repo_id)
    tok = require_token(token, action=f"push to {repo_id}")
    branch = revision or "main"
    files = local_files(folder)
    sent = {rel: PushedFile(rel, *_hash_file(path)) for rel, path in files}
    total = sum(f.size for f in sent.values())
    hf = api()
    with hub_errors(repo_id, revision=branch, action="create"):
        repo_url = hf.create_repo(repo_id, token=tok, private=private, exist_ok=True, repo_type="model")
    if branch != "main":
        with hub_errors(repo_id, revision=branch, action="create a branch in"):
            hf.create_branch(repo_id, branch=branch, token=tok, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in files]
    message = commit_message or f"Upload {len(files)} files with imgai"
    LOG.info("pushing %d files (%s) to %s@%s", len(files), human_size(total), repo_id, branch)
    with hub_errors(repo_id, revision=branch, action="push to"):
        commit = hf.create_commit(repo_id, operations=operations, commit_message=message, revision=branch,
                                  token=tok, repo_type="model")
    verify_remote(repo_id, commit.oid, list(sent.values()), token=tok)
    LOG.info("pushed %s@%s as commit %s and verified %d files", repo_id, branch, commit.oid, len(sent))
    return PushResult(repo_id=repo_id, revision=branch, commit_oid=commit.oid, commit_url=commit.commit_url,
                      url=str(repo_url) if repo_url else f"{endpoint()}/{repo_id}", private=private,
                      files=list(sent.values()), verified=True)


def verify_remote(repo_id: str, commit: str, sent: list[PushedFile], *, token: str) -> None:
    """The Hub's tree at `commit` must hold every sent file with the same size and content hash."""
    from huggingface_hub.hf_api import RepoFile

    with hub_errors(repo_id, revision=commit, action="verify"):
        remote = {e.path: e for e in api().list_repo_tree(repo_id, revision=commit, recursive=True, token=token)
                  if isinstance(e, RepoFile)}
    problems = []
    for f in sent:
        r = remote.get(f.path)
        if r is None:
            problems.append(f"{f.path} is missing")
            continue
        size = r.lfs.size if r.lfs else r.size
        if size != f.size:
            problems.append(f"{f.path} has {size} bytes on the Hub, {f.size} were sent")
        if r.lfs and r.lfs.sha256 != f.sha256:
            problems.append(f"{f.path} has LFS sha256 {r.lfs.sha256[:12]}… on the Hub, {f.sha256[:12]}… was sent")
        elif not r.lfs and r.blob_id != f.git_oid:
            problems.append(f"{f.path} has git blob {str(r.blob_id)[:12]}… on the Hub, {f.git_oid[:12]}… was sent")
    if problems:
        raise PushVerificationError(f"the Hub's copy of {repo_id} at commit {commit[:12]} differs from what was "
                                    f"sent: {'; '.join(problems)}; push again, and check the repo on the Hub")
