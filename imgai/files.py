"""Files made for one visitor (tag results, trained-model downloads).

Each lives in `IMGAI_HOME/visitors/<key>/<prefix><random>/`, where `<key>` is an HMAC of the
visitor's owner key with a secret kept in the data folder, and `<random>` is 128 bits from
`secrets`: nobody can name another visitor's folder. The app hands a file to the visitor who asked
for it (gradio copies it under its own seeded-hash path for that response) and never serves the
data folder by path (ui/security.py). Folders older than `IMGAI_FILES_TTL` seconds (default three
hours) are removed whenever a new one is made, and at start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import time
from pathlib import Path

from .access import LOCAL, Actor, resolve
from .errors import PermissionDeniedError
from .config import paths



def ttl_s() -> int:
    from . import settings

    return settings.get("IMGAI_FILES_TTL")


def cache_schedule() -> tuple[int, int]:
    """(how often, after how long) the web server deletes the uploads and the copies of results it
    keeps in its own cache: the same TTL as the result folders, checked at least hourly."""
    ttl = max(1, ttl_s())
    return min(ttl, 3600), ttl


def root() -> Path:
    folder = paths().home / "visitors"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _secret() -> bytes:
    path = root() / ".key"
    if not path.is_file():
        tmp = path.with_name(f".key-{os.getpid()}-{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)       # the first writer wins; everyone reads the same key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_bytes()


def visitor_folder(owner: str | None) -> Path:
    """The folder of one owner's files (None: the local owner and admins)."""
    key = hmac.new(_secret(), (owner or "<shared>").encode(), hashlib.sha256).hexdigest()[:32]
    return root() / key


def new_folder(actor: Actor | None, prefix: str) -> Path:
    """A fresh, unguessable folder for this actor's next result files."""
    clean_expired()
    folder = visitor_folder(resolve(actor).owner) / f"{prefix}{secrets.token_urlsafe(16)}"
    folder.mkdir(parents=True)
    return folder


def check_readable(actor: Actor | None, path: str | Path) -> Path:
    """`path`, resolved, if it is one of this actor's result files; else PermissionDeniedError.
    (Only the local owner may hand out any other file.)"""
    actor = resolve(actor)
    real = Path(path).resolve()
    if actor.role == LOCAL or real.is_relative_to(visitor_folder(actor.owner).resolve()):
        return real
    raise PermissionDeniedError(f"{Path(path).name} is not one of your result files; you can download only "
                                "files made for you in this session")


def clean_expired(max_age_s: float | None = None) -> int:
    """Remove result folders older than the TTL; returns how many went."""
    limit = ttl_s() if max_age_s is None else max_age_s
    removed, now = 0, time.time()
    for owner_dir in root().iterdir():
        if not owner_dir.is_dir():
            continue
        for folder in owner_dir.iterdir():
            try:
                if now - folder.stat().st_mtime > limit:
                    shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
    return removed
