"""From files to tensors: the image dataset, the train/eval transforms, and the preview grid.

The eval transform is exactly what the saved config.json tells Convert to do (resize the short
side to the image size, bilinear, center crop, normalize), so the ONNX model sees the same
pixels the validation set saw.
"""

from __future__ import annotations

from pathlib import Path

from .data import DataPipeline, Samples, scan, split

INTERPOLATION = "bilinear"
CROP_PCT = 1.0


def eval_transform(image_size: int, mean, std):
    from torchvision import transforms as T

    return T.Compose([T.Resize(image_size, interpolation=T.InterpolationMode.BILINEAR),
                      T.CenterCrop(image_size), T.ToTensor(), T.Normalize(mean, std)])


def augment_steps(pipeline: DataPipeline, image_size: int) -> list:
    """The PIL-to-PIL steps of the training transform (also what the preview shows)."""
    from torchvision import transforms as T

    if pipeline.crop:
        steps = [T.RandomResizedCrop(image_size, scale=(0.6, 1.0), interpolation=T.InterpolationMode.BILINEAR)]
    else:
        steps = [T.Resize(image_size, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(image_size)]
    if pipeline.flip:
        steps.append(T.RandomHorizontalFlip())
    if pipeline.color_jitter:
        steps.append(T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05))
    return steps


def train_transform(pipeline: DataPipeline, image_size: int, mean, std):
    from torchvision import transforms as T

    return T.Compose(augment_steps(pipeline, image_size) + [T.ToTensor(), T.Normalize(mean, std)])


class ImageDataset:
    """(tensor, target) pairs; the target is a class index, or a multi-hot vector for bce."""

    def __init__(self, root: Path, items: list, num_classes: int, transform, *, multi_label: bool = False,
                 spec: dict | None = None):
        self.root, self.items, self.num_classes = Path(root), items, num_classes
        self.transform, self.multi_label = transform, multi_label
        # what the transform does, for the decoded-image cache (train.cache) to do it with tensor ops:
        # image_size, mean, std, augment ({crop, flip, color_jitter}, or None for evaluation)
        self.spec = spec

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        import torch

        from ..classify.preprocess import decode_image

        rel, targets = self.items[i]
        image = self.transform(decode_image(self.root / rel))
        if self.multi_label:
            target = torch.zeros(self.num_classes)
            target[targets] = 1.0
            return image, target
        return image, targets[0]


def datasets(pipeline: DataPipeline, *, image_size: int, val_split: float, seed: int, mean, std,
             multi_label: bool = False, exclude: frozenset = frozenset()) -> tuple[Samples, ImageDataset, ImageDataset]:
    samples = scan(pipeline.root, multi_label=multi_label, exclude=exclude)
    train_items, val_items = split(samples, val_split, seed)
    n = len(samples.labels)
    spec = {"image_size": image_size, "mean": tuple(mean), "std": tuple(std)}
    augment = {"crop": bool(pipeline.crop), "flip": bool(pipeline.flip), "color_jitter": bool(pipeline.color_jitter)}
    train = ImageDataset(samples.root, train_items, n, train_transform(pipeline, image_size, mean, std),
                         multi_label=multi_label, spec={**spec, "augment": augment})
    val = ImageDataset(samples.root, val_items, n, eval_transform(image_size, mean, std), multi_label=multi_label,
                       spec={**spec, "augment": None})
    return samples, train, val


def preview_samples(pipeline: DataPipeline, *, count: int = 8, seed: int = 0, image_size: int | None = None):
    """A few training samples as the model will see them (augmentations applied, before
    normalisation): a list of (PIL image, class name)."""
    import random

    import torch

    from ..classify.preprocess import decode_image

    samples = scan(pipeline.root)
    rng = random.Random(seed)
    picked = rng.sample(samples.items, min(count, len(samples.items)))
    torch.manual_seed(seed)
    steps = augment_steps(pipeline, image_size or pipeline.image_size)
    out = []
    for rel, targets in picked:
        try:
            image = decode_image(samples.root / rel)
        except ValueError:
            continue
        for step in steps:
            image = step(image)
        out.append((image, samples.labels[targets[0]]))
    return out


def preview_grid(pipeline: DataPipeline, *, count: int = 8, seed: int = 0, columns: int = 4):
    """The preview samples tiled into one image."""
    from PIL import Image

    tiles = preview_samples(pipeline, count=count, seed=seed)
    if not tiles:
        return Image.new("RGB", (pipeline.image_size, pipeline.image_size), "white")
    size = pipeline.image_size
    rows = (len(tiles) + columns - 1) // columns
    grid = Image.new("RGB", (min(columns, len(tiles)) * (size + 4), rows * (size + 4)), "white")
    for i, (tile, _) in enumerate(tiles):
        grid.paste(tile.resize((size, size)), ((i % columns) * (size + 4) + 2, (i // columns) * (size + 4) + 2))
    return grid


def inspect_pipeline(name: str, *, count: int = 8, seed: int = 0, actor=None):
    """What the UI shows for a data pipeline: the pipeline, its data check, and preview samples
    (for those who may use it: shared or their own)."""
    from ..access import check
    from .data import check_data, get_pipeline

    pipeline = get_pipeline(name)
    check(actor, "data.use", pipeline)
    return pipeline, check_data(pipeline.root), preview_samples(pipeline, count=count, seed=seed)
