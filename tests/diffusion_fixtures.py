"""Fixtures for the diffusion tests: the four tiny source pipelines, built once per run.

Import the fixtures into a test module with `from tests.diffusion_fixtures import *`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.diffusion_factories import BUILDERS, save_pipeline

KEYS = tuple(BUILDERS)
CHECK = ["--check-steps", "2", "--check-size", "32x32"]     # the tiny pipelines' check: 2 steps, 32x32


def build_sources(root: Path) -> dict[str, Path]:
    sources = {}
    for key in KEYS:
        folder = root / key
        if not (folder / "model_index.json").is_file():
            save_pipeline(key, folder)
        sources[key] = folder
    return sources


@pytest.fixture(scope="session")
def tiny_sources(tmp_path_factory, worker_id) -> dict[str, Path]:
    """{key: folder} of tiny diffusers pipelines (a few MB each), saved as safetensors: built once
    per run, in the folder the xdist workers share (the first builds, under a lock, the other waits
    and reads: 15-40 s of building once, not twice). Tests only read them."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent
    with open(root / "diffusion-sources.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_sources(root / "diffusion-sources")


@pytest.fixture
def broken_source(tmp_path, tiny_sources) -> Path:
    """A copy of the tiny sdxl-turbo pipeline whose UNet weights are truncated."""
    import shutil

    folder = tmp_path / "broken-sdxl-turbo"
    shutil.copytree(tiny_sources["sdxl-turbo"], folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    return folder


def sources_args(sources: dict[str, Path]) -> list[str]:
    args = []
    for key, folder in sources.items():
        args += ["--source", f"{key}={os.fspath(folder)}"]
    return args
