"""Which device does the work, in which precision, and how much memory it has and used.

One place for the device rules that conversion and training share: `auto` means CUDA when a
CUDA device is visible, else the CPU; asking for CUDA where there is none fails with what was
found; 16-bit work on a GPU is bfloat16 where the GPU has it and float16 where it does not.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from .errors import ConfigError, InsufficientResourcesError
from .words import term

QUANTIZE_DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OOM_HINT = ("lower the memory needed (model CPU offload is used when the estimate says it does not fit; "
            "a smaller check with --check-size/--check-steps, or a smaller --batch-size when training), "
            "or use a GPU with more memory")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def what_was_found() -> str:
    """A sentence on why CUDA is not usable here (for the error that asks for it)."""
    import torch

    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    return (f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) sees no CUDA device "
            f"(torch.cuda.device_count() = {torch.cuda.device_count()}{where})")


def resolve_device(requested: str, *, option: str = "--device") -> str:
    """`auto` → cuda when present, else cpu; `cuda` without CUDA → ConfigError naming what was found."""
    if requested not in QUANTIZE_DEVICES:
        raise ConfigError(f"{option} {requested!r} is not one of {', '.join(QUANTIZE_DEVICES)}")
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested == "cuda" and not cuda_available():
        raise ConfigError(f"CUDA was asked for, but {what_was_found()}; use {term('device-cpu')} (or auto)")
    return requested


def bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def cuda_half_dtype() -> str:
    """The 16-bit dtype a GPU computes in: bfloat16 where it has it (Ampere and later), else float16."""
    return "bfloat16" if bf16_supported() else "float16"


def resolve_precision(precision: str, device: str) -> str:
    """`auto` → bf16 on a GPU with bfloat16, fp16 (with a gradient scaler) on older GPUs, fp32 on a CPU.
    An explicit choice the device cannot do is refused (before any job starts)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if device != "cuda":
        if precision == "auto":
            return "fp32"
        if precision == "fp16":
            raise ConfigError(f"precision fp16 needs a CUDA GPU (the device is {device}); use fp32 or auto "
                              "(bf16 runs on a CPU too, but is rarely faster there)")
        return precision
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp16"
    if precision == "bf16" and not bf16_supported():
        raise ConfigError(f"precision bf16 is not supported by this GPU ({gpu_name()}, compute capability "
                          f"{capability()}); use fp16 (with a gradient scaler) or auto")
    return precision


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "none"


def capability() -> str:
    import torch

    major, minor = torch.cuda.get_device_capability() if torch.cuda.is_available() else (0, 0)
    return f"{major}.{minor}"


def cuda_memory() -> tuple[int, int]:
    """(free, total) bytes on the current CUDA device."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return int(free), int(total)


@dataclass
class DeviceInfo:
    device: str                 # cpu | cuda
    name: str                   # the GPU's name, or the CPU's
    dtype: str                  # the working dtype there (float32 on a CPU)
    total_memory_bytes: int | None = None
    capability: str | None = None
    torch_cuda: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def summary(self) -> str:
        if self.device == "cuda":
            from .diffusion.resources import fmt_bytes

            return f"{self.name} ({fmt_bytes(self.total_memory_bytes)}, compute {self.capability}), {self.dtype}"
        return f"CPU, {self.dtype}"


def describe(device: str) -> DeviceInfo:
    import torch

    if device == "cuda":
        return DeviceInfo(device="cuda", name=gpu_name(), dtype=cuda_half_dtype(),
                          total_memory_bytes=cuda_memory()[1], capability=capability(), torch_cuda=torch.version.cuda)
    return DeviceInfo(device="cpu", name="cpu", dtype="float32")


class CudaPeak:
    """The highest CUDA memory allocated by torch while inside (0 off CUDA)."""

    def __init__(self, device: str):
        self.device, self.peak = device, 0

    def __enter__(self) -> "CudaPeak":
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            import torch

            self.peak = int(torch.cuda.max_memory_allocated())


def synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def release(device: str) -> None:
    """Give cached CUDA blocks back, so the next stage (and the memory figures) start clean."""
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def out_of_memory_error(exc: BaseException, *, what: str, device: str) -> InsufficientResourcesError:
    """The typed error for running out of device memory: the figures, then what to do."""
    figures = ""
    if device == "cuda" and cuda_available():
        import torch

        from .diffusion.resources import fmt_bytes

        free, total = cuda_memory()
        figures = (f" (peak allocated {fmt_bytes(torch.cuda.max_memory_allocated())}, "
                   f"{fmt_bytes(free)} free of {fmt_bytes(total)} on {gpu_name()})")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InsufficientResourcesError(f"{what} ran out of {device.upper()} memory{figures}: {first[:300]}. "
                                      f"To fix: {OOM_HINT}")
