"""A run: one or all keys × one or both backends at one quantization, as the original tool's
`--model all --backend both` did. Unsupported combinations are skipped with their reason, one
failing target does not stop the others, and the run ends with a summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

from ..config import paths
from ..engines import EngineOptions, work_function
from ..errors import ConfigError
from .checks import PROMPTS, CheckConfig
from .keys import (MODEL_KEYS, check_quantization, expand_backends, expand_models, skip_reason,
                   target_name)
from .targets import TARGET_STATUSES, RunContext, TargetResult, convert_target
from ..words import render, term

ORG = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}$")


@dataclass
class QuantizeRequest:
    """What `imgai quantize` / the Quantize tab / `model_converter.py` ask for."""
    model: str | tuple = "all"           # a key, a list of keys, or "all"
    backend: str | tuple = "pytorch"     # pytorch | onnx | both
    quantization: str = "INT8"           # INT8 | FP16 | FP32
    sources: dict = field(default_factory=dict)   # key → Hub id or local folder (default: the key's repo)
    output_dir: str | None = None        # default: IMGAI_HOME/converted_models
    force: bool = False                  # redo up-to-date targets and skip the memory/disk refusal
    push: str | None = None              # Hub user or org to upload each finished target to
    private: bool = False
    check_steps: int | None = None
    check_size: tuple | None = None      # (width, height)
    check_prompts: tuple | None = None   # default: checks.PROMPTS
    engine: EngineOptions = field(default_factory=EngineOptions)   # local: one target after another here;
                                         # ray: one Ray task per target (an engine name is taken too)
    device: str = "auto"                 # auto | cpu | cuda: where PyTorch targets load, quantize and sample

    def __post_init__(self):
        self.keys = expand_models(self.model)
        self.backends = expand_backends(self.backend)
        self.quantization = check_quantization(self.quantization)
        unknown = [k for k in self.sources if k not in MODEL_KEYS]
        if unknown:
            raise ConfigError(f"a source was given for unknown key {', '.join(map(repr, unknown))}; "
                              f"known keys: {', '.join(MODEL_KEYS)}")
        idle = [k for k in self.sources if k not in self.keys]
        if idle:
            raise ConfigError(f"a source was given for {', '.join(idle)}, which this run does not convert "
                              f"(models: {', '.join(self.keys)})")
        if self.push is not None and not ORG.match(self.push):
            raise ConfigError(f"--push takes a Hub user or organisation name like 'my-org', got {self.push!r} "
                              "(the repo name is the target's, e.g. my-org/sd15-torch-int8)")
        self.engine = EngineOptions.from_value(self.engine)
        if self.engine.workers is not None:
            raise ConfigError(f"workers={self.engine.workers} does not apply to quantize: each target is one Ray "
                              "task, sized by its memory estimate")
        from ..devices import resolve_device

        self.resolved_device = resolve_device(self.device)   # cuda without CUDA: refused here, before a job
        if self.check_size is not None:
            self.check_size = tuple(int(v) for v in self.check_size)
        if self.check_prompts is not None:
            self.check_prompts = tuple(self.check_prompts)
        width, height = self.check_size or (None, None)
        self.check = CheckConfig(prompts=self.check_prompts or PROMPTS, steps=self.check_steps, width=width,
                                 height=height)

    @property
    def folder(self) -> Path:
        return Path(self.output_dir).expanduser().resolve() if self.output_dir else paths().converted

    def to_params(self) -> dict:
        """JSON for a job record (no secrets live here: the token is never part of a request)."""
        params = {f.name: getattr(self, f.name) for f in fields(self)}
        params["model"], params["backend"] = list(self.keys), list(self.backends)
        params["output_dir"] = str(self.folder)
        params["engine"] = self.engine.to_dict()
        params["check_size"] = list(self.check_size) if self.check_size else None
        params["check_prompts"] = list(self.check_prompts) if self.check_prompts else None
        return params

    @classmethod
    def from_params(cls, params: dict) -> "QuantizeRequest":
        known = {f.name for f in fields(cls)}
        if isinstance(params.get("engine"), str):      # a record written before EngineOptions
            params = dict(params, engine={"name": params["engine"], "address": params.get("address")})
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items() if k in known})

    def describe(self) -> str:
        return f"{'+'.join(self.keys)} {'+'.join(self.backends)} {self.quantization} on {self.resolved_device}"


def parse_sources(values: list[str] | None, keys: tuple[str, ...]) -> dict[str, str]:
    """`--source PATH` (one key) or `--source KEY=PATH` (any number) → {key: source}."""
    found: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if sep and key in MODEL_KEYS:
            found[key] = rest
        elif len(keys) == 1:
            found[keys[0]] = value
        else:
            raise ConfigError(f"the source {value!r} is ambiguous with several models ({', '.join(keys)}); "
                              f"write it as KEY=REPO_ID|PATH: {term('source')}")
    return found


@dataclass(frozen=True)
class PlannedTarget:
    key: str
    backend: str
    quantization: str
    name: str
    skip: str | None


def plan(request: QuantizeRequest) -> list[PlannedTarget]:
    return [PlannedTarget(k, b, request.quantization, target_name(k, b, request.quantization),
                          skip_reason(b, request.quantization))
            for k in request.keys for b in request.backends]


def run(request: QuantizeRequest, *, on_progress: Callable[[float, str], None] = lambda f, s: None,
        on_result: Callable[[TargetResult], None] = lambda r: None,
        on_warning: Callable[[str], None] = lambda m: None, run_id: str | None = None) -> list[TargetResult]:
    """Run every target of the request on its engine (`imgai.engines.WORK`); one result per target."""
    return work_function("quantize", request.engine)(request, on_progress=on_progress, on_result=on_result,
                                                      on_warning=on_warning, run_id=run_id)


def run_here(request: QuantizeRequest, *, on_progress: Callable[[float, str], None] = lambda f, s: None,
             on_result: Callable[[TargetResult], None] = lambda r: None,
             on_warning: Callable[[str], None] = lambda m: None, run_id: str | None = None) -> list[TargetResult]:
    """The local engine: every target of the request in order, in this process."""
    ctx = RunContext(output_dir=request.folder, check=request.check, force=request.force, push=request.push,
                     private=request.private, on_warning=on_warning, device=request.resolved_device)
    if run_id:
        ctx.run_id = run_id
    targets = plan(request)
    results = []
    for i, t in enumerate(targets):
        def on_stage(fraction: float, text: str, i=i) -> None:
            on_progress((i + fraction) / len(targets), text)

        result = convert_target(t.key, t.backend, t.quantization, ctx=ctx, source_spec=request.sources.get(t.key),
                                on_stage=on_stage)
        results.append(result)
        on_result(result)
    on_progress(1.0, summary_line(results))
    return results


def convert(key: str, *, backend: str = "pytorch", quantization: str = "INT8", source: str | None = None,
            output_dir: str | Path | None = None, force: bool = False, check: CheckConfig | None = None,
            device: str = "auto") -> TargetResult:
    """One target, in this process: the verb the bench and the Python API use."""
    request = QuantizeRequest(model=key, backend=backend, quantization=quantization,
                              sources={key: source} if source else {}, output_dir=output_dir, force=force,
                              device=device)
    ctx = RunContext(output_dir=request.folder, check=check or request.check, force=force,
                     device=request.resolved_device)
    return convert_target(key, backend, request.quantization, ctx=ctx, source_spec=source)


SUMMARY_HEADERS = ["TARGET", "STATUS", "PSNR dB", "SSIM", "SIZE", "TIME", "DETAIL"]


def summary_rows(results: list[TargetResult | dict]) -> list[list]:
    rows = []
    for r in results:
        r = r if isinstance(r, dict) else r.to_dict()
        rows.append([r["name"], r["status"],
                     f"{r['psnr_db']:.1f}" if r.get("psnr_db") is not None else "",
                     f"{r['ssim']:.4f}" if r.get("ssim") is not None else "",
                     f"{r['size_ratio']:.2f}x" if r.get("size_ratio") else "",
                     f"{r['seconds']:.1f}s" if r.get("seconds") else "",
                     (r.get("pushed_to") and f"pushed to {r['pushed_to']}") or render(r.get("reason"))
                     or r.get("path") or ""])
    return rows


def summary_line(results: list[TargetResult]) -> str:
    return ", ".join(f"{sum(1 for r in results if r.status == s)} {s}" for s in TARGET_STATUSES)
