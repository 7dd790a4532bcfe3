"""Before loading a pipeline: will it fit in memory, and will its output fit on disk?
While converting: how much memory did it really take?

Estimates come from the safetensors headers (element counts by dtype), never from loading.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InsufficientResourcesError
from .source import SAFETENSORS_BYTES, Source
from ..words import term

GB = 1024 ** 3
RUNTIME_OVERHEAD = 1 * GB        # torch + diffusers + onnxruntime themselves (measured ~1.1 GB RSS)
ONNX_TRACE_FACTOR = 3.0          # torch.onnx tracing holds the module, its trace and the proto at once


@dataclass(frozen=True)
class ResourceEstimate:
    ram_bytes: int           # peak resident memory expected for the whole target (load, convert, check)
    disk_bytes: int          # size of the output folder
    float32_bytes: int       # the pipeline's weights in float32 (what the check loads)
    source_bytes: int        # the source's weights as stored
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def _bytes_at(params_by_dtype: dict, width: int | None) -> int:
    return sum(n * (width or SAFETENSORS_BYTES.get(dtype, 4)) for dtype, n in params_by_dtype.items())


def estimate(source: Source, *, backend: str, quantization: str, denoiser: str, device: str = "cpu"
             ) -> ResourceEstimate:
    """What this target needs of RAM and disk. The check loads the original pipeline in float32 and then
    the converted one, one after the other; a conversion holds one pipeline at its working dtype.
    On CUDA the pipelines pass through RAM in 16 bits on their way to the GPU (plan_vram sizes the GPU)."""
    comps = source.weight_components
    fp32 = sum(_bytes_at(c.params_by_dtype, 4) for c in comps)
    stored = sum(_bytes_at(c.params_by_dtype, None) for c in comps)
    den = source.components[denoiser]
    den_fp32 = _bytes_at(den.params_by_dtype, 4)
    if backend == "onnx":
        # export traces one component at a time, on top of the loaded float32 pipeline
        largest = max(_bytes_at(c.params_by_dtype, 4) for c in comps)
        ram = int(fp32 + ONNX_TRACE_FACTOR * largest)
        disk = fp32  # every weight in float32 (the VAE splits into encoder and decoder)
        note = f"float32 pipeline + {ONNX_TRACE_FACTOR:.0f}x its largest component while tracing"
    elif device == "cuda":
        converted = (stored - _bytes_at(den.params_by_dtype, None) + den.params if quantization == "INT8"
                     else sum(c.params * 2 for c in comps))
        ram = _bytes_at({"BF16": sum(c.params for c in comps)}, 2) + stored
        disk = converted
        note = "the source as stored and its 16-bit copy, on their way to the GPU"
    elif quantization == "INT8":
        # the converted pipeline: the denoiser's weights at ~1 byte, the rest as stored
        converted = stored - _bytes_at(den.params_by_dtype, None) + den.params
        ram = int(max(fp32, converted + den_fp32 // 4))
        disk = converted
        note = "float32 pipeline for the reference images, then the INT8 pipeline"
    else:
        converted = sum(c.params * 2 for c in comps)
        ram = int(max(fp32, stored + converted))
        disk = converted
        note = "float32 pipeline for the reference images; the source and its 16-bit copy while converting"
    return ResourceEstimate(ram_bytes=int(ram * 1.15) + RUNTIME_OVERHEAD, disk_bytes=int(disk),
                            float32_bytes=fp32, source_bytes=stored, note=note)


def available_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def free_disk(folder: Path) -> int:
    folder = Path(folder)
    while not folder.exists():
        folder = folder.parent
    return int(shutil.disk_usage(folder).free)


def require_fits(est: ResourceEstimate, *, target: str, output_dir: Path, ram: int | None = None,
                 disk: int | None = None) -> None:
    """Refuse, naming the sizes, when this machine cannot hold the target (`--force` skips this)."""
    ram = available_ram() if ram is None else ram
    disk = free_disk(output_dir) if disk is None else disk
    problems = []
    if est.ram_bytes > ram:
        problems.append(f"about {fmt_bytes(est.ram_bytes)} of RAM ({est.note}; float32 weights "
                        f"{fmt_bytes(est.float32_bytes)}) but {fmt_bytes(ram)} is available")
    if est.disk_bytes * 1.05 > disk:
        problems.append(f"about {fmt_bytes(est.disk_bytes)} of disk for the output but {output_dir} has "
                        f"{fmt_bytes(disk)} free")
    if problems:
        raise InsufficientResourcesError(f"{target} needs " + "; and ".join(problems) +
                                         f". Use a larger machine, free some space, or try anyway with {term('force')}")


def fmt_bytes(n: float | int | None) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class PeakMemory:
    """Samples this process's resident memory in a thread; `peak` is the highest seen while inside."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak = 0
        self.start = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> "PeakMemory":
        import psutil

        self.start = self.peak = psutil.Process().memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        import psutil

        self.peak = max(self.peak, psutil.Process().memory_info().rss)


VRAM_OVERHEAD = 2 * GB      # CUDA context, cuDNN/cuBLAS workspaces and the check's activations (a margin)
VRAM_LOAD_FACTOR = 1.15     # allocator rounding and the transient copies of loading


@dataclass(frozen=True)
class VramPlan:
    """How a target uses the GPU: the whole pipeline resident, or diffusers' model CPU offload."""
    mode: str                  # resident | model_cpu_offload
    resident_bytes: int        # estimated VRAM with the whole pipeline on the GPU
    offload_bytes: int         # estimated VRAM with one component at a time (the largest)
    free_bytes: int
    total_bytes: int
    dtype: str
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def plan_vram(source: Source, *, dtype_bytes: int, dtype: str, free: int, total: int, target: str,
              force: bool = False) -> VramPlan:
    """Resident when the pipeline fits in free VRAM, model CPU offload when its largest component
    does, else refuse with the figures (`force` tries offload anyway)."""
    comps = source.weight_components
    sizes = {c.name: c.params * dtype_bytes for c in comps}
    resident = int(sum(sizes.values()) * VRAM_LOAD_FACTOR) + VRAM_OVERHEAD
    largest = max(sizes, key=sizes.get)
    offload = int(sizes[largest] * VRAM_LOAD_FACTOR) + VRAM_OVERHEAD
    weights = f"{fmt_bytes(sum(sizes.values()))} of {dtype} weights"
    if resident <= free:
        return VramPlan("resident", resident, offload, free, total, dtype,
                        f"whole pipeline on the GPU ({weights}, about {fmt_bytes(resident)} with the check)")
    if offload <= free or force:
        return VramPlan("model_cpu_offload", resident, offload, free, total, dtype,
                        f"the pipeline ({weights}, about {fmt_bytes(resident)} with the check) does not fit in "
                        f"{fmt_bytes(free)} free VRAM: diffusers' model CPU offload keeps one component on the GPU "
                        f"at a time (largest: {largest}, about {fmt_bytes(offload)})")
    raise InsufficientResourcesError(
        f"{target} needs about {fmt_bytes(resident)} of GPU memory ({weights}) or, with model CPU offload, "
        f"about {fmt_bytes(offload)} for its largest component ({largest}), but the GPU has {fmt_bytes(free)} "
        f"free of {fmt_bytes(total)}. Use a GPU with more memory, {term('device-cpu')}, or {term('force')} to try offload anyway")
