"""Does the converted pipeline still draw the same pictures?

Both pipelines sample the same fixed prompts with the same seeds; the images are compared with
PSNR (dB, on [0, 1] floats) and SSIM (skimage's default: 7x7 uniform window, sample covariance,
per channel). The denoiser's time per step is measured by wrapping its `forward`, which works
for torch modules and for optimum's ONNX Runtime parts alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .keys import CPU_CHECK, MIN_PSNR_DB, DiffusionModelKey

PROMPTS = ("a photo of a red fox sitting in fresh snow, golden hour",
           "a watercolor painting of a lighthouse on a cliff above a stormy sea")


@dataclass(frozen=True)
class CheckConfig:
    """How the check samples; None means the key's defaults (keys.CheckDefaults)."""
    prompts: tuple[str, ...] = PROMPTS
    seed: int = 0
    steps: int | None = None
    height: int | None = None
    width: int | None = None
    guidance_scale: float | None = None
    min_psnr: float | None = None        # None: keys.MIN_PSNR_DB for the quantization

    def __post_init__(self):
        if not self.prompts or not all(isinstance(p, str) and p.strip() for p in self.prompts):
            raise ConfigError(f"check prompts must be non-empty strings, got {self.prompts!r}")
        if self.steps is not None and not 1 <= int(self.steps) <= 200:
            raise ConfigError(f"check steps must be between 1 and 200, got {self.steps}")
        for name in ("height", "width"):
            v = getattr(self, name)
            if v is not None and (int(v) < 16 or int(v) % 16):
                raise ConfigError(f"check {name} must be a multiple of 16 and at least 16, got {v}")

    def resolve(self, model_key: DiffusionModelKey, quantization: str, device: str = "cpu") -> dict:
        """The concrete settings (recorded in quantization_info.json and compared on re-runs): the
        key's full settings on CUDA, CPU_CHECK's small ones on a CPU, each overridden by a flag."""
        d = model_key.check
        steps, height, width = d.steps, d.height, d.width
        if device != "cuda":
            steps, height, width = min(steps, CPU_CHECK.max_steps), min(height, CPU_CHECK.size), min(width, CPU_CHECK.size)
        settings = {"prompts": list(self.prompts), "seed": self.seed,
                    "steps": int(self.steps or steps),
                    "height": int(self.height or height), "width": int(self.width or width),
                    "guidance_scale": float(d.guidance_scale if self.guidance_scale is None else self.guidance_scale),
                    "extra": dict(d.extra),
                    "min_psnr_db": float(MIN_PSNR_DB[quantization] if self.min_psnr is None else self.min_psnr)}
        if device != "cuda" and not (self.steps and self.height and self.width):
            settings["defaults"] = CPU_CHECK.describe()
        return settings


@dataclass
class Samples:
    images: list            # float32 HxWx3 arrays in [0, 1]
    seconds_per_step: float
    seconds: float
    reused: bool = False    # served from the run's cache of reference images
    peak_bytes: int = 0     # peak memory while sampling (CUDA allocated, or process RSS on a CPU)


@dataclass
class CheckResult:
    psnr_db: list[float]
    ssim: list[float]
    min_psnr_db: float
    threshold_psnr_db: float
    passed: bool
    seconds_per_step_original: float
    seconds_per_step_converted: float

    def to_dict(self) -> dict:
        return asdict(self)


class _StepTimer:
    """Times every call of the denoiser (one call per sampling step in these pipelines); on CUDA it
    waits for the GPU before and after each call, so a step's time is its kernels', not their launch."""

    def __init__(self, denoiser, device: str = "cpu"):
        self.denoiser, self.durations, self.device = denoiser, [], device
        self._original = denoiser.__dict__.get("forward")

    def __enter__(self):
        from ..devices import synchronize

        inner, device = self.denoiser.forward, self.device

        def timed(*args, **kwargs):
            synchronize(device)
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                synchronize(device)
                self.durations.append(time.perf_counter() - t0)

        self.denoiser.forward = timed
        return self

    def __exit__(self, *exc):
        if self._original is None:
            del self.denoiser.forward
        else:
            self.denoiser.forward = self._original


def sample(pipe, settings: dict, *, denoiser: str, device: str = "cpu") -> Samples:
    """Draw one image per prompt, seeds `seed`, `seed+1`, …; all on the CPU generator (so the noise is
    the same whichever device samples)."""
    import torch

    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    images, t0 = [], time.perf_counter()
    with _StepTimer(getattr(pipe, denoiser), device) as timer, torch.inference_mode():
        for i, prompt in enumerate(settings["prompts"]):
            out = pipe(prompt, generator=torch.Generator("cpu").manual_seed(settings["seed"] + i),
                       num_inference_steps=settings["steps"], guidance_scale=settings["guidance_scale"],
                       height=settings["height"], width=settings["width"], output_type="np",
                       **settings["extra"])
            images.append(np.asarray(out.images[0], dtype=np.float32))
    per_step = statistics.median(timer.durations) if timer.durations else float("nan")
    return Samples(images=images, seconds_per_step=per_step, seconds=time.perf_counter() - t0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]; identical images give 200 dB (a cap),
    an image with NaN or infinite pixels (an fp16 overflow) 0 dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if not np.isfinite(mse):
        return 0.0
    return 200.0 if mse <= 1e-20 else min(200.0, 10.0 * np.log10(1.0 / mse))


def _box_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean over every full w x w window (the 'valid' region)."""
    c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0))), axis=0), axis=1)
    return (c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]) / (w * w)


def ssim(a: np.ndarray, b: np.ndarray, *, win: int = 7, data_range: float = 1.0) -> float:
    """Structural similarity as skimage.metrics.structural_similarity(a, b, channel_axis=-1,
    data_range=1) computes it (its border crop equals keeping only full windows)."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    norm = win * win / (win * win - 1)
    scores = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        ux, uy = _box_mean(x, win), _box_mean(y, win)
        vx = norm * (_box_mean(x * x, win) - ux * ux)
        vy = norm * (_box_mean(y * y, win) - uy * uy)
        vxy = norm * (_box_mean(x * y, win) - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        scores.append(float(s.mean()))
    score = float(np.mean(scores))
    return score if np.isfinite(score) else 0.0


def compare(original: Samples, converted: Samples, *, threshold_psnr_db: float) -> CheckResult:
    psnrs = [round(psnr(a, b), 3) for a, b in zip(original.images, converted.images)]
    ssims = [round(ssim(a, b), 5) for a, b in zip(original.images, converted.images)]
    low = min(psnrs)
    return CheckResult(psnr_db=psnrs, ssim=ssims, min_psnr_db=low, threshold_psnr_db=threshold_psnr_db,
                       passed=bool(low >= threshold_psnr_db),
                       seconds_per_step_original=round(original.seconds_per_step, 5),
                       seconds_per_step_converted=round(converted.seconds_per_step, 5))


def save_grid_images(original: Samples, converted: Samples, folder: Path) -> list[str]:
    """PNG files `original_N.png` / `converted_N.png` (what the card and the UI show)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (a, b) in enumerate(zip(original.images, converted.images)):
        for label, img in (("original", a), ("converted", b)):
            name = f"{label}_{i}.png"
            Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(folder / name)
            names.append(name)
    return names
