"""`imgai tag PATH... [--model ID] [--top-k] [--threshold] [--format] [--output] [--sidecar]`

Exit code 0 when every file was tagged, 1 when some failed, 2 for a usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .output import print_json


def register(sub) -> None:
    p = sub.add_parser("tag", help="tag images (files and folders) with an enabled ONNX model")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", help="model id (default: the default model)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.0, help="minimum probability to report")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--output", type=Path, help="write results here instead of stdout")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--sidecar", choices=("txt", "xmp"), help="also write a sidecar next to each image")
    p.add_argument("--overwrite", action="store_true", help="replace existing sidecars")
    p.set_defaults(func=cmd_tag)


def cmd_tag(args) -> int:
    from tqdm import tqdm

    from ..classify.outputs import render, write_sidecars
    from ..classify.tag import TagOptions, tag
    from ..errors import ConfigError

    try:
        options = TagOptions(top_k=args.top_k, threshold=args.threshold, batch_size=args.batch_size)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar = tqdm(unit="img", file=sys.stderr, disable=None)

    def on_result(done, total, result):
        bar.total = total
        bar.update(1)

    try:
        results = tag(args.paths, model_id=args.model, options=options, on_result=on_result)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    text = render(results, args.format)
    if args.output:
        tmp = args.output.with_name(f".{args.output.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.output)
    else:
        sys.stdout.write(text)
    if args.sidecar:
        outcome = write_sidecars(results, args.sidecar, overwrite=args.overwrite)
        kept = sum(1 for v in outcome.values() if v == "kept existing")
        if kept:
            print(f"kept {kept} existing .{args.sidecar} sidecar(s); pass --overwrite to replace them",
                  file=sys.stderr)
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"failed: {r.path}: {r.error}", file=sys.stderr)
    return 1 if failed else 0
