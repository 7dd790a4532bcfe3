"""`imgai quantize --model KEY|all --backend pytorch|onnx|both --quantization INT8|FP16|FP32`

The run is a `quantize` job (worker subprocess, progress, cancel); `--wait` follows it with a
progress bar and ends with the summary table. The exit code is 1 when any target failed.
"""

from __future__ import annotations

import argparse
import sys

from .output import JSON, WAIT, follow, print_json, print_table, running_or_submit


def _size(value: str) -> tuple[int, int]:
    from ..errors import ConfigError
    from ..presentation.quantize import parse_check_size

    try:
        return parse_check_size(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(f"--check-size: {exc}") from exc


def register(sub) -> None:
    from ..devices import QUANTIZE_DEVICES
    from ..diffusion.keys import BACKENDS, MODEL_KEYS, QUANTIZATIONS
    from ..engines import ENGINES

    p = sub.add_parser(
        "quantize", parents=[WAIT, JSON], help="convert diffusion pipelines: TorchAO INT8 / FP16 PyTorch, Optimum ONNX FP32",
        description="Convert sd15, sdxl, sdxl-turbo or flux1 (or all) and check each result against the "
                    "original. Unsupported combinations are skipped with their reason; a target already "
                    "made from the same source revision and settings is skipped unless --force.")
    p.add_argument("--model", choices=[*MODEL_KEYS, "all"], help="a model key, or all")
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="pytorch")
    p.add_argument("--quantization", type=str.upper, choices=QUANTIZATIONS, default="INT8")
    p.add_argument("--source", action="append", metavar="[KEY=]REPO_ID|PATH",
                   help="take the key's pipeline from another Hub repo or a local diffusers folder "
                        "(KEY= is needed when several models run; repeatable)")
    p.add_argument("--output-dir", help="where <key>-torch-int8/ etc. go (default: IMGAI_HOME/converted_models)")
    p.add_argument("--force", action="store_true",
                   help="redo targets that are up to date, and try even when memory or disk look too small")
    p.add_argument("--push", metavar="ORG", help="upload each finished target to the Hub as ORG/<target>")
    p.add_argument("--private", action="store_true", help="create pushed repos as private")
    p.add_argument("--check-steps", type=int, metavar="N", help="sampling steps of the check (default: per key)")
    p.add_argument("--check-size", type=_size, metavar="WxH", help="image size of the check (default: per key)")
    p.add_argument("--check-prompt", action="append", metavar="TEXT",
                   help="a prompt for the check (repeatable; default: two fixed prompts)")
    p.add_argument("--device", choices=QUANTIZE_DEVICES, default="auto",
                   help="where PyTorch targets load, quantize and run their check: auto (CUDA when present), "
                        "cpu or cuda (bfloat16, or float16 on GPUs without it; model CPU offload when the "
                        "pipeline does not fit)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="ray: every target as a Ray task sized by its memory estimate (see README, On a cluster)")
    p.add_argument("--address", help="ray: the cluster to join (default: RAY_ADDRESS, else a private local Ray)")
    p.add_argument("--list", action="store_true", help="list the model keys and what each backend produces")
    p.set_defaults(func=cmd_quantize, parser=p)


def cmd_quantize(args) -> int:
    from .. import jobs
    from ..diffusion import QuantizeRequest, parse_sources, plan, support_table
    from ..diffusion.job import KIND, submit, target_results
    from ..diffusion.keys import expand_models
    from ..diffusion.matrix import SUMMARY_HEADERS, summary_rows
    from ..diffusion.targets import FAILED
    from ..engines import EngineOptions

    if args.list:
        rows = support_table()
        if args.json:
            print_json(rows)
        else:
            print_table([[r["key"], r["repo_id"], r["pipeline"], r["pytorch"], r["onnx"]] for r in rows],
                        ["KEY", "UPSTREAM", "PIPELINE", "PYTORCH", "ONNX"])
        return 0
    if not args.model:
        args.parser.error("--model is required (a key or 'all'; see --list)")
    request = QuantizeRequest(model=args.model, backend=args.backend, quantization=args.quantization,
                              sources=parse_sources(args.source, expand_models(args.model)),
                              output_dir=args.output_dir, force=args.force, push=args.push, private=args.private,
                              check_steps=args.check_steps, check_size=args.check_size,
                              check_prompts=args.check_prompt, device=args.device,
                              engine=EngineOptions(args.engine, address=args.address))
    request.engine.require()          # say so now, not from inside the job
    if not args.json:
        for t in plan(request):
            if t.skip:
                print(f"skip {t.name}: {t.skip}", file=sys.stderr)
    job = running_or_submit(lambda: submit(request), subject=request.describe(), kinds=(KIND,), wait=args.wait,
                            show=not args.json)
    if not args.wait:
        if args.json:
            print_json(job.to_dict())
        else:
            print(f"queued job {job.id} ({request.describe()} → {request.folder}); "
                  f"follow it with `imgai jobs show {job.id}`")
        return 0
    job = follow(job.id, show=not args.json)
    if job.state not in (jobs.SUCCEEDED, jobs.FAILED):
        print(f"job {job.id} {job.state}: {job.error}", file=sys.stderr)
    results = target_results(job.id)
    if args.json:
        print_json({"job_id": job.id, "output_dir": str(request.folder), "targets": results})
    else:
        print_table(summary_rows(results), SUMMARY_HEADERS)
    failed = sum(1 for r in results if r["status"] == FAILED)
    return 1 if failed or job.state != jobs.SUCCEEDED else 0
