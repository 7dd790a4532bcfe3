"""Training at the hardware's speed, on the CPU: the decoded-image cache gives validation the very
pixels the file transform gives and reproducible, per-epoch augmentations; the DataLoader feed
(data over the cache budget) keeps its workers across epochs and reshuffles per epoch; the
precision rules refuse what the device cannot do before a job exists; a run records its
precision and feed. The GPU side (bf16/fp16 autocast, channels_last, the cache on the GPU, no
host synchronisation per batch): tests/test_cuda.py."""

from __future__ import annotations

import pytest

from imgai.classify.imagenet import IMAGENET_MEAN, IMAGENET_STD
from imgai.errors import ConfigError
from imgai.train import TrainConfig
from imgai.train.data import DataPipeline
from imgai.train.images import datasets
from tests.train_fixtures import make_shapes, one_thread  # noqa: F401 (fixture)

MEAN, STD = IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def shapes_sets(tmp_path_factory):
    root = make_shapes(tmp_path_factory.mktemp("shapes") / "data", per_class=8, size=48)
    pipeline = DataPipeline(name="shapes", kind="folder", location=str(root), root=str(root), image_size=32,
                            flip=True, crop=True, color_jitter=True)
    _, train_set, val_set = datasets(pipeline, image_size=32, val_split=0.25, seed=0, mean=MEAN, std=STD)
    return train_set, val_set


def test_cached_validation_batches_equal_the_file_transform(shapes_sets):
    import torch

    from imgai.train.cache import CachedBatches, DecodedImages

    _, val_set = shapes_sets
    cache = DecodedImages(val_set, image_size=32, store="cpu", device="cpu", workers=2)
    batches = CachedBatches(cache, batch_size=4, mean=MEAN, std=STD, augment=None, shuffle=False, seed=0)
    images = torch.cat([x for x, _ in batches])
    targets = torch.cat([y for _, y in batches])
    expected = torch.stack([val_set[i][0] for i in range(len(val_set))])
    assert images.shape == expected.shape == (len(val_set), 3, 32, 32)
    assert (images - expected).abs().max() < 1e-4
    assert targets.tolist() == [val_set[i][1] for i in range(len(val_set))]


def test_cached_augmentations_are_per_epoch_reproducible_and_stay_in_range(shapes_sets):
    import torch

    from imgai.train.cache import CachedBatches, DecodedImages

    train_set, _ = shapes_sets
    cache = DecodedImages(train_set, image_size=32, store="cpu", device="cpu")

    def epoch(n):
        feed = CachedBatches(cache, batch_size=5, mean=(0, 0, 0), std=(1, 1, 1), augment=train_set.spec["augment"],
                             shuffle=True, seed=3).set_epoch(n)
        return [(x.clone(), y.clone()) for x, y in feed]

    first, again, second = epoch(1), epoch(1), epoch(2)
    assert len(first) == len(train_set) // 5 + (len(train_set) % 5 > 1)     # a last batch of one is dropped
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], second[0][0])
    pixels = torch.cat([x for x, _ in first])
    assert pixels.min() >= 0 and pixels.max() <= 1 and pixels.shape[1:] == (3, 32, 32)   # mean 0, std 1: [0, 1]
    plain = torch.cat([x for x, _ in CachedBatches(cache, batch_size=5, mean=(0, 0, 0), std=(1, 1, 1), augment=None,
                                                   shuffle=True, seed=3).set_epoch(1)])
    assert (pixels - plain).abs().mean() > 0.03, "the augmentations changed nothing"


def test_augment_batch_flips_and_crops_like_torchvision():
    import torch

    from imgai.train.cache import _crop_boxes, augment_batch

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    flipped = [augment_batch(x, generator=g, crop=False, flip=True, color_jitter=False) for _ in range(24)]
    assert all(torch.equal(f[i], x[i]) or torch.equal(f[i], x[i].flip(-1)) for f in flipped for i in range(2))
    assert any(torch.equal(f[0], x[0].flip(-1)) for f in flipped) and any(torch.equal(f[0], x[0]) for f in flipped)
    w, h, x0, y0 = _crop_boxes(1000, 64, torch.Generator().manual_seed(1), "cpu")
    area = w * h / 64 ** 2
    assert area.min() >= 0.55 and area.max() <= 1.0 and (x0 + w).max() <= 64 and (y0 + h).max() <= 64
    assert ((w / h) >= 0.7).all() and ((w / h) <= 1.4).all()


def test_over_the_budget_the_dataloader_persists_and_reshuffles_per_epoch(shapes_sets, monkeypatch):
    from imgai.train import cache
    from imgai.train.feed import LoaderBatches, make_batches

    train_set, _ = shapes_sets
    monkeypatch.setattr(cache, "CACHE_RAM_FRACTION", 0.0)
    config = TrainConfig(batch_size=4, num_workers=1, prefetch_factor=2, pretrained=False)
    feed, how = make_batches(train_set, config, device="cpu", shuffle=True)
    assert isinstance(feed, LoaderBatches) and "over the cache budget" in how
    assert feed.loader.persistent_workers and not feed.loader.pin_memory

    def order(epoch):
        return list(iter(feed.loader.sampler)) if feed.set_epoch(epoch) else None

    assert order(1) == order(1) != order(2) and sorted(order(2)) == list(range(len(train_set)))
    batches = [y.tolist() for _, y in feed.set_epoch(1)]
    workers = feed.loader._iterator._workers if feed.loader._iterator else []
    again = [y.tolist() for _, y in feed.set_epoch(1)]
    assert batches == again and workers and feed.loader._iterator._workers == workers   # the same processes


def test_precision_is_refused_before_a_job_when_the_device_cannot_do_it(imgai_home, cli):
    import torch

    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        TrainConfig(device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="precision 'fp8' is not one of auto, fp32, bf16, fp16"):
        TrainConfig(device="cpu", precision="fp8")
    assert TrainConfig(device="cpu").resolved_precision() == "fp32"
    code, _, err = cli("train", "start", "nothing", "--data", str(imgai_home), "--device", "cpu",
                       "--precision", "fp16")
    assert code == 1 and "fp16 needs a CUDA GPU" in err
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device 'cuda' is not available on this machine .*torch"):
            TrainConfig(device="cuda")


@pytest.mark.parametrize("precision,budget", [("fp32", 0.25), ("bf16", 0.25), ("fp32", 0.0)])
def test_fit_learns_and_records_its_precision_and_feed(shapes_sets, precision, budget, monkeypatch, one_thread):
    from imgai.train import cache
    from imgai.train.loop import fit

    monkeypatch.setattr(cache, "CACHE_RAM_FRACTION", budget)
    train_set, val_set = shapes_sets
    model = _tiny_cnn()
    config = TrainConfig(epochs=6, batch_size=8, lr=3e-3, device="cpu", precision=precision, pretrained=False)
    result = fit(model, train_set, val_set, config, num_classes=3)
    assert result.precision == precision
    assert ("decoded-image cache" in result.feed) == (budget > 0) and ("streaming" in result.feed) == (budget == 0)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] and len(result.confusion_matrix) == 3
    assert sum(map(sum, result.confusion_matrix)) == len(val_set)
    assert all(p.is_contiguous() and p.device.type == "cpu" for p in model.parameters())


def _tiny_cnn():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(16, 3))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_cancel_stops_a_training_jobs_image_decode(shapes_sets, workers):
    """Inside a training job a cancel is raised only at the job's checks (imgai/job_context.py);
    decoding the whole data set is one of them, image by image, so a long decode stops early."""
    from imgai.job_context import JobCancelled, cancel_requested, checked_cancel
    from imgai.train.cache import DecodedImages

    train_set, _ = shapes_sets
    with pytest.raises(JobCancelled), checked_cancel():
        assert cancel_requested()          # what the worker's SIGTERM handler does: noted, not raised
        DecodedImages(train_set, image_size=32, store="cpu", device="cpu", workers=workers)
        pytest.fail("the decode ran to its end")
