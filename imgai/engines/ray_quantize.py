"""The conversion matrix on Ray: one Ray task per target (key × backend × quantization).

Each task calls the very function a local run calls, `diffusion.targets.convert_target`, so the
outputs land in the same layout with the same `quantization_info.json` and card. A task asks
Ray for the memory the target is estimated to need (`diffusion.resources.estimate`, read from the
safetensors headers), so a cluster packs targets onto nodes that can hold them; one failing
target never stops the others. The output folder must be one every node writes to (on a single
machine it is).
"""

from __future__ import annotations

from typing import Callable

from ..diffusion.keys import get_model_key
from ..diffusion.matrix import QuantizeRequest, plan, summary_line
from ..diffusion.targets import FAILED, RunContext, TargetResult, convert_target
from ..errors import InsufficientResourcesError
from ..log import get_logger
from .ray_session import ray_session, require_ray
from ..words import term

LOG = get_logger("imgai.engines.ray_quantize")
DEFAULT_MEMORY = 2 * 1024 ** 3      # when a source cannot be read ahead (its task will report why)


def target_memory(key: str, backend: str, quantization: str, source_spec: str | None) -> int:
    """The memory to request for a target: the same estimate the local run checks against."""
    from ..diffusion import resources
    from ..diffusion.source import resolve_source

    model_key = get_model_key(key)
    try:
        source = resolve_source(model_key, source_spec)
        est = resources.estimate(source, backend=backend, quantization=quantization, denoiser=model_key.denoiser)
    except Exception as exc:      # an unreadable source fails inside its task, with the local message
        LOG.info("%s %s: no memory estimate (%s); requesting %d bytes", key, backend, exc, DEFAULT_MEMORY)
        return DEFAULT_MEMORY
    return est.ram_bytes


def convert_on_worker(key: str, backend: str, quantization: str, source_spec: str | None, ctx_fields: dict
                      ) -> TargetResult:
    """Runs in a Ray task: one target, exactly as a local run converts it."""
    ctx = RunContext(**ctx_fields)
    return convert_target(key, backend, quantization, ctx=ctx, source_spec=source_spec)


def run_on_ray(request: QuantizeRequest, *, on_progress: Callable[[float, str], None] = lambda f, s: None,
               on_result: Callable[[TargetResult], None] = lambda r: None,
               on_warning: Callable[[str], None] = lambda m: None, run_id: str | None = None) -> list[TargetResult]:
    """Every target of the request as a Ray task; results in plan order, reported as they finish."""
    ray = require_ray()
    targets = plan(request)
    ctx_fields = {"output_dir": request.folder, "check": request.check, "force": request.force,
                  "push": request.push, "private": request.private, "device": request.resolved_device}
    if run_id:
        ctx_fields["run_id"] = run_id
    else:
        ctx_fields["run_id"] = RunContext(output_dir=request.folder).run_id   # one run id for all targets
    results: dict[int, TargetResult] = {}

    def finish(i: int, result: TargetResult) -> None:
        results[i] = result
        for message in result.warnings:
            on_warning(f"{result.name}: {message}")
        on_result(result)
        on_progress(len(results) / len(targets), f"{result.name}: {result.status}")

    with ray_session(request.engine.address) as session:
        largest = max((n["Resources"].get("memory", 0) for n in session["nodes"]), default=0)
        pending = {}
        for i, t in enumerate(targets):
            if t.skip:
                finish(i, convert_target(t.key, t.backend, t.quantization, ctx=RunContext(**ctx_fields)))
                continue
            spec = request.sources.get(t.key)
            memory = target_memory(t.key, t.backend, t.quantization, spec)
            if memory > largest:
                if not request.force:
                    finish(i, TargetResult(name=t.name, key=t.key, backend=t.backend, quantization=t.quantization,
                                           status=FAILED, reason=str(InsufficientResourcesError(
                                               f"{t.name} needs about {memory / 2**30:.1f} GiB of memory but the "
                                               f"largest Ray node offers {largest / 2**30:.1f} GiB; add a bigger node "
                                               f"or try anyway with {term('force')}"))))
                    continue
                memory = largest
            gpus = 1 if ctx_fields["device"] == "cuda" and t.backend == "pytorch" else 0
            task = ray.remote(convert_on_worker).options(num_cpus=1, num_gpus=gpus, memory=memory, max_retries=0,
                                                           name=f"imgai-quantize:{t.name}")
            pending[task.remote(t.key, t.backend, t.quantization, spec, ctx_fields)] = i
            LOG.info("%s: submitted to Ray (memory %d bytes)", t.name, memory)
        on_progress(len(results) / len(targets), f"{len(pending)} target(s) running on Ray")
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            t = targets[i]
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as exc:   # the task's process died (out of memory, a lost node)
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                result = TargetResult(name=t.name, key=t.key, backend=t.backend, quantization=t.quantization,
                                      status=FAILED, reason=f"its Ray task died: {reason}")
            finish(i, result)
    ordered = [results[i] for i in range(len(targets))]
    on_progress(1.0, summary_line(ordered))
    return ordered
