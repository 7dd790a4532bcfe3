"""Synthetic training data for the training tests, made in code: coloured shapes on noisy
backgrounds, one folder per class. Seeded, so every run sees the same pictures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

CLASSES = ("circle", "square", "triangle")
# Each class has its own shape and a colour family, with jitter, random size and position.
BASE_COLOURS = {"circle": (220, 50, 50), "square": (40, 170, 60), "triangle": (50, 80, 220)}


def draw_shape(kind: str, size: int, rng: random.Random):
    from PIL import Image, ImageDraw

    background = tuple(rng.randint(200, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    # noise speckles so no two images are alike
    for _ in range(size):
        x, y = rng.randrange(size), rng.randrange(size)
        draw.point((x, y), fill=tuple(rng.randint(120, 255) for _ in range(3)))
    colour = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in BASE_COLOURS[kind])
    extent = rng.randint(size // 2, size - 6)
    x0, y0 = rng.randint(2, size - extent - 2), rng.randint(2, size - extent - 2)
    box = (x0, y0, x0 + extent, y0 + extent)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x0 + extent // 2, y0), (x0, y0 + extent), (x0 + extent, y0 + extent)], fill=colour)
    return image


def make_shapes(root: Path, *, per_class: int = 30, size: int = 40, seed: int = 0,
                classes: tuple[str, ...] = CLASSES, fmt: str = "png") -> Path:
    """ROOT/<class>/<n>.png for each class."""
    rng = random.Random(seed)
    root = Path(root)
    for kind in classes:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_shape(kind, size, rng).save(folder / f"{kind}-{i:03d}.{fmt}")
    return root


def make_new_images(folder: Path, *, per_class: int = 3, size: int = 40, seed: int = 999) -> dict[Path, str]:
    """Fresh images (a different seed) with their true class, for tagging after training."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for kind in CLASSES:
        for i in range(per_class):
            path = folder / f"new-{kind}-{i}.png"
            draw_shape(kind, size, rng).save(path)
            truth[path] = kind
    return truth


TINY_RESNET = {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128], "stem_width": 16}


def run_here(job_id: str):
    """Run a queued job in this process, exactly as `python -m imgai.worker` would (saves the
    worker's start-up in tests that are about learning, not about processes)."""
    import signal

    from imgai import db, jobs
    from imgai.worker import run_in_worker

    with db.transaction() as conn:
        conn.execute("UPDATE jobs SET state = ? WHERE id = ? AND state = ?", (jobs.STARTING, job_id, jobs.QUEUED))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        run_in_worker(job_id)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return jobs.get(job_id)


@pytest.fixture
def one_thread(monkeypatch):
    """Training tests use one CPU thread, here and in the worker processes they start: on a
    shared 2-core machine two OpenMP threads fighting a neighbour's load run many times slower
    than one. (The product itself uses torch's default: every core.)"""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
