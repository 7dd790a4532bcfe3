"""The decoded-image cache: every image decoded and resized once, kept as uint8, and each epoch's
batches augmented and normalised with tensor ops where training runs (the GPU when there is one).

Used when the images fit a RAM budget (`CACHE_RAM_FRACTION` of the free memory, and on CUDA a
share of the free GPU memory to hold them there); otherwise training streams from the files
through a DataLoader. Each image is stored as the eval transform prepares it (short side resized
to the image size, bilinear, centre crop), so validation sees exactly the pixels it would from the
files. Training batches get, per image: a random resized crop of that square (scale 0.6-1, aspect
3/4-4/3, as torchvision's RandomResizedCrop draws them, resampled bilinearly), a horizontal flip,
and colour jitter (brightness, contrast, saturation ±30%, hue ±0.05 turned in YIQ space, in that
order): the pipeline's augmentations, drawn from a generator seeded per epoch, so a resumed run
draws what the uninterrupted one did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CACHE_RAM_FRACTION = 0.25       # of the RAM available when training starts
CACHE_VRAM_FRACTION = 0.25      # of the free GPU memory, to keep the cache on the GPU
RRC_SCALE, RRC_RATIO = (0.6, 1.0), (3 / 4, 4 / 3)
JITTER = {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05}


@dataclass
class CachePlan:
    use: bool
    bytes: int
    budget: int
    reason: str


def plan_cache(images: int, image_size: int, *, available: int | None = None,
               fraction: float | None = None) -> CachePlan:
    """Whether `images` uint8 images of image_size² fit the RAM budget."""
    import psutil

    fraction = CACHE_RAM_FRACTION if fraction is None else fraction
    need = images * 3 * image_size * image_size
    budget = int((psutil.virtual_memory().available if available is None else available) * fraction)
    if need <= budget:
        return CachePlan(True, need, budget, f"decoded-image cache: {images} images, {need / 2**20:.0f} MB")
    return CachePlan(False, need, budget, f"streaming from the files: decoded images would take "
                                          f"{need / 2**20:.0f} MB, over the cache budget of {budget / 2**20:.0f} MB")


def _decode(args) -> "object":
    import numpy as np
    import torch
    from PIL import Image

    from ..classify.preprocess import decode_image

    path, size = args
    image = decode_image(path)
    w, h = image.size
    long = int(size * max(w, h) / min(w, h))     # torchvision's Resize(size): the short side becomes `size`
    new = (size, long) if w <= h else (long, size)
    image = image.resize(new, Image.BILINEAR)
    left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
    image = image.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


class DecodedImages:
    """A dataset's images as one uint8 tensor N×3×S×S and its targets, kept on `store` (the GPU when
    they fit there, else RAM); batches are augmented on `device`, where training runs."""

    def __init__(self, dataset, *, image_size: int, store: str, device: str, workers: int = 0):
        import torch

        from ..job_context import check_cancelled

        paths = [(dataset.root / rel, image_size) for rel, _ in dataset.items]
        tensors = []
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:   # PIL decodes without the GIL
                for tensor in pool.map(_decode, paths, chunksize=16):
                    check_cancelled()            # a training job's cancel stops a long decode here
                    tensors.append(tensor)
        else:
            for path in paths:
                check_cancelled()
                tensors.append(_decode(path))
        images = torch.stack(tensors) if tensors else torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8)
        if dataset.multi_label:
            targets = torch.zeros(len(dataset.items), dataset.num_classes)
            for i, (_, labels) in enumerate(dataset.items):
                targets[i, labels] = 1.0
        else:
            targets = torch.tensor([labels[0] for _, labels in dataset.items], dtype=torch.long)
        if store != "cpu":
            images, targets = images.to(store), targets.to(store)
        self.images, self.targets, self.store, self.device = images, targets, store, device

    def __len__(self) -> int:
        return len(self.targets)


class CachedBatches:
    """One epoch's batches from a DecodedImages: shuffled (train) or in order (eval), augmented when
    training, normalised, channels_last when asked; a DataLoader's contract (len, iter)."""

    def __init__(self, cache: DecodedImages, *, batch_size: int, mean, std, augment: dict | None,
                 shuffle: bool, seed: int, channels_last: bool = False, shard: tuple[int, int] | None = None):
        import torch

        self.cache, self.batch_size, self.augment, self.shuffle = cache, batch_size, augment, shuffle
        self.seed, self.channels_last, self.shard, self.epoch = seed, channels_last, shard, 0
        self.mean = torch.tensor(mean, device=cache.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=cache.device).view(1, 3, 1, 1) * 255

    def set_epoch(self, epoch: int) -> "CachedBatches":
        self.epoch = epoch
        return self

    def _order(self):
        import torch

        n = len(self.cache)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch))
                 if self.shuffle else torch.arange(n))
        if self.shard is not None:
            rank, world = self.shard
            order = order[rank::world]
        # a last batch of one sample breaks BatchNorm in train mode: drop it in that case only
        if self.shuffle and len(order) > self.batch_size and len(order) % self.batch_size == 1:
            order = order[:-1]
        return order

    def __len__(self) -> int:
        return math.ceil(len(self._order()) / self.batch_size)

    def __iter__(self):
        import torch

        device = self.cache.device
        order = self._order().to(self.cache.store)
        generator = None
        if self.augment is not None:
            generator = torch.Generator(device=device).manual_seed(self.seed * 1000 + self.epoch)
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            images = self.cache.images.index_select(0, index).to(device, non_blocking=True).float()
            targets = self.cache.targets.index_select(0, index).to(device, non_blocking=True)
            if self.augment is not None:
                images = augment_batch(images, generator=generator, **self.augment)
            images = (images - self.mean) / self.std
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, targets


def _uniform(n: int, low: float, high: float, generator, device):
    import torch

    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def _crop_boxes(n: int, size: int, generator, device):
    """torchvision's RandomResizedCrop draw, vectorised: ten tries per image, the first that fits,
    else the whole image. Returns (w, h, x0, y0) as float tensors in pixels."""
    import torch

    area = size * size * _uniform(n * 10, *RRC_SCALE, generator, device).view(n, 10)
    log_ratio = _uniform(n * 10, math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1]), generator, device).view(n, 10)
    ratio = torch.exp(log_ratio)
    w, h = torch.sqrt(area * ratio).round(), torch.sqrt(area / ratio).round()
    ok = (w <= size) & (h <= size) & (w > 0) & (h > 0)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.zeros(n, dtype=torch.long, device=device))
    w = torch.where(ok.any(1), w.gather(1, first[:, None]).squeeze(1), torch.full((n,), float(size), device=device))
    h = torch.where(ok.any(1), h.gather(1, first[:, None]).squeeze(1), torch.full((n,), float(size), device=device))
    x0 = torch.floor(torch.rand(n, generator=generator, device=device) * (size - w + 1))
    y0 = torch.floor(torch.rand(n, generator=generator, device=device) * (size - h + 1))
    return w, h, x0, y0


def _gray(x):
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def augment_batch(x, *, generator, crop: bool, flip: bool, color_jitter: bool):
    """x: B×3×S×S floats in [0, 255]; the pipeline's augmentations, one draw per image."""
    import torch
    import torch.nn.functional as F

    n, _, size, _ = x.shape
    device = x.device
    if crop:
        w, h, x0, y0 = _crop_boxes(n, size, generator, device)
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0], theta[:, 1, 1] = w / size, h / size
        theta[:, 0, 2] = (2 * x0 + w) / size - 1
        theta[:, 1, 2] = (2 * y0 + h) / size - 1
        grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if flip:
        flipped = torch.rand(n, generator=generator, device=device) < 0.5
        x = torch.where(flipped.view(n, 1, 1, 1), x.flip(-1), x)
    if color_jitter:
        def factor(amount):
            return _uniform(n, 1 - amount, 1 + amount, generator, device).view(n, 1, 1, 1)

        x = (x * factor(JITTER["brightness"])).clamp(0, 255)
        mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * factor(JITTER["contrast"]) + mean).clamp(0, 255)
        gray = _gray(x)
        x = ((x - gray) * factor(JITTER["saturation"]) + gray).clamp(0, 255)
        x = _turn_hue(x, _uniform(n, -JITTER["hue"], JITTER["hue"], generator, device) * 2 * math.pi).clamp(0, 255)
    return x


_YIQ: dict = {}     # device → (RGB→YIQ, YIQ→RGB), made once (a copy to the GPU waits for it; per batch it must not)


def _yiq(device):
    import torch

    key = str(device)
    if key not in _YIQ:
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                              dtype=torch.float64)
        _YIQ[key] = (to_yiq.float().to(device), torch.linalg.inv(to_yiq).float().to(device))
    return _YIQ[key]


def _turn_hue(x, angle):
    """Rotate the chroma of RGB pixels by `angle` radians in YIQ space (luma kept)."""
    import torch

    to_yiq, from_yiq = _yiq(x.device)
    cos, sin = torch.cos(angle), torch.sin(angle)
    n = x.shape[0]
    turn = torch.zeros(n, 3, 3, device=x.device)
    turn[:, 0, 0] = 1
    turn[:, 1, 1], turn[:, 1, 2], turn[:, 2, 1], turn[:, 2, 2] = cos, -sin, sin, cos
    matrix = from_yiq @ turn @ to_yiq                     # n×3×3
    return torch.einsum("nij,njhw->nihw", matrix, x)
