"""The diffusion model keys: one table that the CLI, the UI, the docs and the tests read.

A key names an upstream diffusers pipeline and what imgai can make of it. The support matrix
(which backend takes which quantization) and the check thresholds live here too, so a skipped
combination and a failed check both trace back to one line of this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError, UnknownModelError

BACKENDS = ("pytorch", "onnx")
QUANTIZATIONS = ("INT8", "FP16", "FP32")

# backend → the quantizations it produces (as the original model_converter.py's table)
SUPPORTED: dict[str, tuple[str, ...]] = {
    "pytorch": ("FP16", "INT8"),
    "onnx": ("FP32",),
}

# Why a combination is not produced: shown as the one-line skip reason.
UNSUPPORTED_REASONS: dict[tuple[str, str], str] = {
    ("pytorch", "FP32"): "PyTorch FP32 is the source pipeline itself; there is nothing to convert "
                         "(use FP16 or INT8, or --backend onnx for FP32)",
    ("onnx", "INT8"): "ONNX is exported in FP32 only; INT8 is a PyTorch (TorchAO) target "
                      "(use --backend pytorch --quantization INT8)",
    ("onnx", "FP16"): "ONNX is exported in FP32 only (use --quantization FP32, or --backend pytorch for FP16)",
}

# Lowest PSNR (dB) between the converted and the original pipeline's images for a check to pass.
# Measured here (same prompts and seeds):
#   faithful conversions — tiny test pipelines: INT8 63-78, FP16 67-78, BF16 ~52, ONNX FP32 129-141;
#                          ~90M-parameter bench models, 256x256, 4 steps: INT8 64-67, ONNX FP32 130-131;
#   broken ones          — an unrelated image (another seed) 13; every Linear weight 5% off 44-49;
#                          Linear weights rounded to integers 18-31 (tiny random pipelines barely
#                          depend on their denoiser, so they discriminate less than real ones).
# Full-size pipelines sampled for 12-20 steps amplify small weight changes, so INT8 and FP16 get
# floors well below the faithful figures yet far above an unrelated image; FP32 ONNX only reorders
# float operations, so its floor is high.
MIN_PSNR_DB: dict[str, float] = {"INT8": 25.0, "FP16": 30.0, "FP32": 50.0}

FOLDER_BACKEND = {"pytorch": "torch", "onnx": "onnx"}  # <key>-torch-int8, <key>-onnx-fp32 (the seed's layout)


@dataclass(frozen=True)
class CpuCheck:
    """The check's size on a CPU, where a key's full settings take many minutes: every key samples at
    most `max_steps` steps at `size`x`size` (stated in quantization_info.json; flags override)."""
    size: int = 256
    max_steps: int = 4

    def describe(self) -> str:
        return (f"CPU default: {self.size}x{self.size}, at most {self.max_steps} steps "
                "(the key's full settings run on CUDA; --check-size/--check-steps override)")


CPU_CHECK = CpuCheck()


@dataclass(frozen=True)
class CheckDefaults:
    """How a key's check samples images on a GPU: its upstream card's guidance, steps and size.
    On a CPU the check is smaller (CPU_CHECK); both pipelines use the same settings, so a smaller
    check stays a fair comparison. --check-steps / --check-size override either."""
    steps: int
    guidance_scale: float
    height: int
    width: int
    extra: dict = field(default_factory=dict)   # pipeline-specific call arguments


@dataclass(frozen=True)
class DiffusionModelKey:
    key: str
    repo_id: str                      # the upstream Hub repo
    pipeline: str                     # diffusers pipeline class
    denoiser: str                     # the component TorchAO quantizes first
    text_encoders: tuple[str, ...]
    license: str                      # used when the source declares none
    check: CheckDefaults
    summary: str
    warning: str | None = None        # said before a conversion starts, and in the card


MODEL_KEYS: dict[str, DiffusionModelKey] = {k.key: k for k in (
    DiffusionModelKey(
        "sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "StableDiffusionPipeline", "unet",
        ("text_encoder",), "creativeml-openrail-m",
        CheckDefaults(steps=20, guidance_scale=7.5, height=512, width=512),
        "Stable Diffusion 1.5: 860M-parameter UNet, CLIP ViT-L text encoder, 512x512"),
    DiffusionModelKey(
        "sdxl", "stabilityai/stable-diffusion-xl-base-1.0", "StableDiffusionXLPipeline", "unet",
        ("text_encoder", "text_encoder_2"), "openrail++",
        CheckDefaults(steps=25, guidance_scale=5.0, height=1024, width=1024),
        "Stable Diffusion XL base 1.0: 2.6B-parameter UNet, two CLIP text encoders, 1024x1024"),
    DiffusionModelKey(
        "sdxl-turbo", "stabilityai/sdxl-turbo", "StableDiffusionXLPipeline", "unet",
        ("text_encoder", "text_encoder_2"), "other",
        CheckDefaults(steps=1, guidance_scale=0.0, height=512, width=512),
        "SDXL-Turbo: SDXL distilled for 1-4 steps without guidance, 512x512"),
    DiffusionModelKey(
        "flux1", "black-forest-labs/FLUX.1-schnell", "FluxPipeline", "transformer",
        ("text_encoder", "text_encoder_2"), "apache-2.0",
        CheckDefaults(steps=4, guidance_scale=0.0, height=1024, width=1024, extra={"max_sequence_length": 256}),
        "FLUX.1 [schnell]: 12B-parameter rectified-flow transformer, CLIP-L + T5-XXL text encoders, 1-4 steps",
        warning="FLUX.1 is large: the 12B transformer alone is 24 GB in bf16; the ONNX FP32 export "
                "needs about 3x its float32 size (~140 GB) of RAM while tracing, and INT8 still "
                "loads the float32 pipeline once to check it"),
)}


def get_model_key(key: str) -> DiffusionModelKey:
    try:
        return MODEL_KEYS[key]
    except KeyError:
        raise UnknownModelError(f"unknown diffusion model key {key!r}; known keys: "
                                f"{', '.join(MODEL_KEYS)} (or 'all')") from None


def expand_models(model: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'all' → every key; a key or list of keys → validated keys, in table order."""
    names = [model] if isinstance(model, str) else list(model)
    if "all" in names:
        return tuple(MODEL_KEYS)
    for name in names:
        get_model_key(name)
    return tuple(k for k in MODEL_KEYS if k in names)


def expand_backends(backend: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    names = [backend] if isinstance(backend, str) else list(backend)
    if "both" in names:
        return BACKENDS
    bad = [b for b in names if b not in BACKENDS]
    if bad or not names:
        raise ConfigError(f"unknown backend {', '.join(map(repr, bad)) or '(none)'}; "
                          f"use one of {', '.join(BACKENDS)} or 'both'")
    return tuple(b for b in BACKENDS if b in names)


def check_quantization(quantization: str) -> str:
    q = str(quantization).upper()
    if q not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantization!r}; use one of {', '.join(QUANTIZATIONS)}")
    return q


def skip_reason(backend: str, quantization: str) -> str | None:
    """None when the backend produces this quantization, else the one-line reason it is skipped."""
    if quantization in SUPPORTED[backend]:
        return None
    return UNSUPPORTED_REASONS.get((backend, quantization),
                                   f"{backend} does not produce {quantization}")


def target_name(key: str, backend: str, quantization: str) -> str:
    return f"{key}-{FOLDER_BACKEND[backend]}-{quantization.lower()}"


def support_table() -> list[dict]:
    """The key table as rows (for docs, the UI and `imgai quantize --list`)."""
    return [{"key": k.key, "repo_id": k.repo_id, "pipeline": k.pipeline,
             "pytorch": ", ".join(SUPPORTED["pytorch"]), "onnx": ", ".join(SUPPORTED["onnx"]),
             "summary": k.summary} for k in MODEL_KEYS.values()]
