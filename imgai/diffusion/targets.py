"""One target (a key × backend × quantization): load → convert → check → card → upload.

The output is built in a hidden staging folder next to its final place and renamed into place
only when the check passed and the card is written; a failure or a cancel leaves the previous
output (if any) untouched and no partial folder behind.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import MissingDependencyError, ValidationError
from ..log import get_logger
from ..staging import move_into_place, staged_file
from . import checks, resources
from .card import write_card
from .info import build_info, component_table, is_up_to_date, read_info, settings_for, write_info
from ..words import term
from .keys import get_model_key, skip_reason, target_name
from .outputs import STAGING_PREFIX
from .source import Source, resolve_source

LOG = get_logger("imgai.diffusion")
# (start, end) of each stage within one target's progress
STAGES = {"load": (0.0, 0.2), "convert": (0.2, 0.6), "check": (0.6, 0.9), "card": (0.9, 0.95), "upload": (0.95, 1.0)}

OnStage = Callable[[float, str], None]


# what became of a target (TargetResult.status): the summary line, the job and the CLI's exit code read these
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
TARGET_STATUSES = (DONE, SKIPPED, FAILED)


@dataclass
class TargetResult:
    name: str
    key: str
    backend: str
    quantization: str
    status: str                      # one of TARGET_STATUSES
    reason: str = ""
    path: str | None = None
    psnr_db: float | None = None     # the lowest over the check's prompts
    ssim: float | None = None
    size_ratio: float | None = None
    seconds: float = 0.0
    pushed_to: str | None = None
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunContext:
    """What the targets of one run share: where they go, options, and the reference images."""
    output_dir: Path
    check: checks.CheckConfig = field(default_factory=checks.CheckConfig)
    force: bool = False
    push: str | None = None
    private: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    device: str = "cpu"              # where PyTorch targets load, quantize and sample: cpu | cuda (resolved)
    references: dict = field(default_factory=dict)   # (revision, check settings) → Samples
    on_warning: Callable[[str], None] = lambda message: None


def machine_summary(device: str = "cpu") -> dict:
    import psutil
    import torch

    from ..devices import describe

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total
    threads = torch.get_num_threads()
    gpu = describe(device).summary if device == "cuda" else "no GPU used"
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": threads, "ram_bytes": ram,
            "summary": f"{cpu}, {threads} torch threads, {resources.fmt_bytes(ram)} RAM, {gpu}"}


def convert_target(key: str, backend: str, quantization: str, *, ctx: RunContext, source_spec: str | None = None,
                   on_stage: OnStage = lambda fraction, text: None) -> TargetResult:
    """Produce one target; never raises for an expected failure (the result says `failed`)."""
    model_key = get_model_key(key)
    name = target_name(key, backend, quantization)
    result = TargetResult(name=name, key=key, backend=backend, quantization=quantization, status=FAILED)
    reason = skip_reason(backend, quantization)
    if reason:
        result.status, result.reason = SKIPPED, reason
        return result
    t0 = time.perf_counter()
    device = target_device(ctx, backend)
    last = [""]

    def staged(fraction: float, text: str) -> None:
        last[0] = text
        on_stage(fraction, text)

    try:
        _run(model_key, backend, quantization, name, ctx, source_spec, staged, result)
    except Exception as exc:      # a cancel (JobCancelled) or Ctrl-C passes: the staging folder is already gone
        from ..devices import is_out_of_memory, out_of_memory_error
        from ..errors import ImgaiError

        if is_out_of_memory(exc):      # the staging folder is gone; say how much was needed and what to do
            exc = out_of_memory_error(exc, what=last[0] or name, device=device)
        if isinstance(exc, ImgaiError):
            LOG.warning("target %s failed: %s", name, exc)
            result.reason = str(exc)
        else:
            LOG.exception("target %s failed", name)
            result.reason = f"{type(exc).__name__}: {exc}"
        result.status = FAILED
    finally:
        result.seconds = round(time.perf_counter() - t0, 2)
    if result.status == FAILED:
        _release_device(device)      # a failed target's tensors (held by its traceback) are gone now
    return result


def target_device(ctx: RunContext, backend: str) -> str:
    """PyTorch targets run on the run's device; the ONNX export and its onnxruntime check on the CPU."""
    return ctx.device if backend == "pytorch" else "cpu"


def placement_for(source: Source, device: str, *, target: str, force: bool):
    """Where and how this target's pipelines live: the CPU in float32, or the GPU in its 16-bit dtype,
    resident or with model CPU offload as the VRAM estimate says (refused when neither fits)."""
    from ..devices import cuda_half_dtype, cuda_memory
    from .quantize import CPU, Placement

    if device != "cuda":
        return CPU, None
    dtype = cuda_half_dtype()
    free, total = cuda_memory()
    vram = resources.plan_vram(source, dtype_bytes=2, dtype=dtype, free=free, total=total, target=target,
                               force=force)
    return Placement(device="cuda", dtype=dtype, offload=vram.mode == "model_cpu_offload"), vram


def _stage(on_stage: OnStage, name: str, target: str, within: float = 0.0, text: str | None = None) -> None:
    start, end = STAGES[name]
    on_stage(start + (end - start) * within, f"{target}: {text or name}")


def _run(model_key, backend, quantization, name, ctx: RunContext, source_spec, on_stage, result) -> None:
    final = Path(ctx.output_dir) / name
    timings: dict[str, float] = {}
    t = time.perf_counter()
    _stage(on_stage, "load", name, text="resolving the source")
    source = resolve_source(model_key, source_spec)
    device = target_device(ctx, backend)
    check_settings = ctx.check.resolve(model_key, quantization, device)
    settings = settings_for(model_key.key, backend, quantization, check_settings, device=device)
    if not ctx.force and is_up_to_date(final, revision=source.revision, settings=settings):
        info = read_info(final)
        result.status, result.path = SKIPPED, str(final)
        result.reason = (f"up to date: {final.name} was made from {source.revision[:19]} with the same settings "
                         f"({term('force')} redoes it)")
        result.psnr_db, result.ssim = info["check"]["min_psnr_db"], min(info["check"]["ssim"])
        result.size_ratio = info["size"]["ratio"]
        if ctx.push:
            _stage(on_stage, "upload", name)
            result.pushed_to = push_target(final, org=ctx.push, private=ctx.private)
        return
    estimate = resources.estimate(source, backend=backend, quantization=quantization,
                                  denoiser=model_key.denoiser, device=device)
    if model_key.warning:
        result.warnings.append(model_key.warning)
        ctx.on_warning(f"{name}: {model_key.warning}")
    if ctx.force:
        LOG.info("%s: resource check skipped (--force); estimate %s", name, estimate.to_dict())
    else:
        resources.require_fits(estimate, target=name, output_dir=Path(ctx.output_dir))
    placement, vram = placement_for(source, device, target=name, force=ctx.force)
    if vram is not None:
        LOG.info("%s: %s", name, vram.note)
        if vram.mode != "resident":
            ctx.on_warning(f"{name}: {vram.note}")
    Path(ctx.output_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(ctx.output_dir) / f"{STAGING_PREFIX}{name}-{ctx.run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with resources.PeakMemory() as peak:
            reference = _reference(source, check_settings, model_key, ctx, on_stage, name, placement)
            timings["load"] = time.perf_counter() - t
            t = time.perf_counter()
            _stage(on_stage, "convert", name, text="quantizing with TorchAO" if quantization == "INT8"
                   else "exporting with Optimum" if backend == "onnx" else f"casting to {quantization}")
            report = _convert(source, model_key, backend, quantization, staging, placement)
            _release(source, device)
            timings["convert"] = time.perf_counter() - t
            t = time.perf_counter()
            _stage(on_stage, "check", name, text="sampling the converted pipeline")
            converted = _sample_output(staging, backend, report.load_dtype, check_settings, model_key.denoiser,
                                       placement)
            _release(source, device)
            scores = checks.compare(reference, converted, threshold_psnr_db=check_settings["min_psnr_db"])
            checks.save_grid_images(reference, converted, staging / "check")
            timings["check"] = time.perf_counter() - t
        t = time.perf_counter()
        check = {"settings": check_settings, **scores.to_dict(),
                 "reference_reused": reference.reused}
        info = build_info(target=name, key=model_key.key, pipeline=model_key.pipeline, source=source,
                          backend=backend, quantization=quantization, settings=settings, report=report,
                          components=component_table(source, staging, report, backend=backend), check=check,
                          estimate=estimate.to_dict(), peak_rss_bytes=peak.peak,
                          baseline_rss_bytes=peak.start, durations=timings,
                          warning=model_key.warning)
        info["machine"] = machine_summary(device)
        info["device"] = device_record(device, placement, vram)
        info["memory"].update(peak_memory_record(device, reference, converted))
        result.psnr_db, result.ssim, result.size_ratio = scores.min_psnr_db, min(scores.ssim), info["size"]["ratio"]
        if not scores.passed:
            raise ValidationError(
                f"{name} failed its check: PSNR {scores.min_psnr_db:.1f} dB against the original is below "
                f"{scores.threshold_psnr_db:.0f} dB (SSIM {min(scores.ssim):.3f}); the output was not kept")
        _stage(on_stage, "card", name, text="writing quantization_info.json and the card")
        info["durations_s"]["card"] = round(time.perf_counter() - t, 3)
        write_info(staging, info)
        write_card(staging, repo_id=f"{ctx.push}/{name}" if ctx.push else None, info=info)
        replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.status, result.path = DONE, str(final)
    LOG.info("%s done: PSNR %.1f dB, size ratio %s", name, scores.min_psnr_db, info["size"]["ratio"])
    if ctx.push:
        _stage(on_stage, "upload", name)
        result.pushed_to = push_target(final, org=ctx.push, private=ctx.private)


def _reference(source: Source, settings: dict, model_key, ctx: RunContext, on_stage, name,
               placement) -> checks.Samples:
    """The original pipeline's images (float32 on a CPU, 16-bit on a GPU), computed once per source,
    placement and check settings in a run."""
    from .quantize import load_original

    cache_key = (source.revision, str(placement), json.dumps({k: v for k, v in settings.items()
                                                              if k != "min_psnr_db"}, sort_keys=True))
    if cache_key in ctx.references:
        samples = ctx.references[cache_key]
        samples.reused = True
        return samples
    _stage(on_stage, "load", name, 0.3, f"loading the original pipeline ({placement.dtype}, {placement.device})")
    pipe = load_original(source, placement)
    _stage(on_stage, "load", name, 0.6, f"sampling the original pipeline on {placement.device}")
    with _device_peak(placement.device) as peak:
        samples = checks.sample(pipe, settings, denoiser=model_key.denoiser, device=placement.device)
    samples.peak_bytes = peak.peak
    del pipe
    _release(source, placement.device)
    ctx.references[cache_key] = samples
    return samples


def _convert(source: Source, model_key, backend: str, quantization: str, staging: Path, placement):
    if backend == "onnx":
        from .onnx import export_onnx

        return export_onnx(source, model_key, staging)
    from .quantize import write_pytorch

    return write_pytorch(source, model_key, quantization, staging, placement)


def _sample_output(folder: Path, backend: str, load_dtype: str, settings: dict, denoiser: str,
                   placement) -> checks.Samples:
    """Load the written output as a user would (from disk) and sample it."""
    if backend == "onnx":
        from .onnx import load_onnx_output

        pipe = load_onnx_output(folder)
    else:
        from .quantize import load_pytorch_output

        pipe = load_pytorch_output(folder, load_dtype=load_dtype, placement=placement)
    try:
        with _device_peak(placement.device) as peak:
            samples = checks.sample(pipe, settings, denoiser=denoiser, device=placement.device)
        samples.peak_bytes = peak.peak
        return samples
    finally:
        del pipe


def _device_peak(device: str):
    """The peak memory of one sampling: CUDA memory allocated by torch, or this process's RSS."""
    from ..devices import CudaPeak

    return CudaPeak(device) if device == "cuda" else resources.PeakMemory()


def device_record(device: str, placement, vram) -> dict:
    """quantization_info.json's `device`: where it ran, in which dtype, resident or offloaded."""
    from ..devices import describe

    record = describe(device).to_dict()
    record.update(dtype=placement.dtype, offload="model_cpu_offload" if placement.offload else None,
                  vram=vram.to_dict() if vram is not None else None)
    return record


def peak_memory_record(device: str, reference: checks.Samples, converted: checks.Samples) -> dict:
    return {"sampling_peak_measure": ("torch.cuda.max_memory_allocated" if device == "cuda"
                                      else "process resident memory (RSS)"),
            "sampling_peak_bytes_original": reference.peak_bytes,
            "sampling_peak_bytes_converted": converted.peak_bytes}


def _release(source: Source, device: str = "cpu") -> None:
    """Collect a dropped pipeline's reference cycles now when it is big enough to matter (a full
    collection costs ~0.5 s with torch and diffusers loaded; measured: without it the FP32
    original is still resident while the INT8 copy loads, 2.1x instead of ~1.2x peak RAM); on
    CUDA always, and give the freed blocks back to the GPU."""
    if device == "cuda" or source.total_bytes() > 32 * 1024 ** 2:
        gc.collect()
    _release_device(device)


def _release_device(device: str) -> None:
    from ..devices import release

    if device == "cuda":
        gc.collect()
    release(device)


def replace_dir(staging: Path, final: Path) -> None:
    """Move the finished staging folder into place; an older output is swapped out, then removed
    (named as staging meanwhile, so no listing takes it for an output)."""
    move_into_place(staging, final, replace=True, aside_prefix=STAGING_PREFIX)


def push_target(folder: Path, *, org: str, private: bool = False, token: str | None = None,
                actor=None) -> str:
    """Upload a finished output to `org/<target>` (one commit, card included) with imgai's Hub upload.
    `token` (e.g. a visitor's OAuth token) is passed through and never stored; None means HF_TOKEN
    or the cached login."""
    from ..access import check

    check(actor, "quantize.push")
    try:
        from ..hub import push_folder
    except ImportError as exc:
        raise MissingDependencyError("uploading needs imgai.hub (the Hub store), which this installation "
                                     "lacks; the output is ready locally in " + str(folder)) from exc
    repo_id = f"{org}/{folder.name}"
    from .card import render_diffusion_card

    with staged_file(folder / "README.md") as staged:
        render_diffusion_card(folder, repo_id=repo_id).save(str(staged))
    pushed = push_folder(folder, repo_id, token=token, private=private,
                         commit_message=f"imgai quantize: {folder.name}")
    return getattr(pushed, "url", None) or getattr(pushed, "repo_url", None) or repo_id


def push_output(name: str, *, org: str, private: bool = False, token: str | None = None, actor=None) -> str:
    """`push_target` for a finished output named as the Quantize tab lists it."""
    from ..access import check
    from .outputs import describe_output

    check(actor, "quantize.push")
    return push_target(describe_output(name).path, org=org, private=private, token=token, actor=actor)
