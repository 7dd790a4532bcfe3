"""`imgai tag PATH... [--model ID] [--top-k] [--threshold] [--format] [--output] [--sidecar]
[--engine local|ray [--address ADDRESS] [--actors N]]`

Exit code 0 when every file was tagged, 1 when some failed, none was an image, or a setting is bad,
2 for a usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .output import JSON


def register(sub) -> None:
    from ..engines import ENGINES

    p = sub.add_parser("tag", help="tag images (files and folders) with an enabled ONNX model", parents=[JSON])
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image files and folders (with --engine ray also s3://, gs://, file:// URIs)")
    p.add_argument("--model", help="model id (default: the default model)")
    p.add_argument("--top-k", type=int, help="at most this many tags (default: 5 for classifiers, every tag above "
                                             "its threshold for taggers with categories)")
    p.add_argument("--threshold", type=float, help="minimum probability to report (taggers: sets both below)")
    p.add_argument("--general-threshold", type=float, help="taggers with categories: general tags (default 0.35)")
    p.add_argument("--character-threshold", type=float,
                   help="taggers with categories: character tags (default 0.85)")
    p.add_argument("--underscores-to-spaces", action="store_true",
                   help="long_hair → long hair (kaomoji such as ^_^ kept)")
    p.add_argument("--exclude-tags", default="", help="comma-separated tags never to report")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv", "parquet"), default="table",
                   help="parquet needs --output")
    p.add_argument("--output", help="write results here instead of stdout (a file, or a URI: s3://, gs://, …)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--sidecar", choices=("txt", "xmp"), help="also write a sidecar next to each image")
    p.add_argument("--overwrite", action="store_true", help="replace existing sidecars")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this process; ray: a Ray cluster (results in the order they finish)")
    p.add_argument("--force", action="store_true", help="library: tag again even what is unchanged")
    p.add_argument("--no-library", action="store_true",
                   help="do not record into the photo library (folders are recorded by default; see `imgai library`)")
    p.add_argument("--address", help="ray: the cluster to join (default: RAY_ADDRESS, else a private local Ray)")
    p.add_argument("--actors", type=int, help="ray: inference actors (default: one per node)")
    p.set_defaults(func=cmd_tag)


def cmd_tag(args) -> int:
    from tqdm import tqdm

    from ..classify.outputs import write_sidecars
    from ..classify.tag import TagOptions, model_note, no_images
    from ..classify.writers import ResultFile
    from ..engines import EngineOptions, tag_stream
    from ..errors import ConfigError

    if args.output and "://" not in args.output:
        folder = Path(args.output).expanduser().parent
        if not folder.is_dir():
            raise ConfigError(f"--output {args.output}: the folder {folder} does not exist; create it, or write "
                              "the results elsewhere")
    if not args.model:
        from .. import jobs
        from ..demo import first_use
        from .output import follow

        job = first_use()
        if job is not None:
            print("first use: preparing the demo model (EfficientNet-Lite0, ImageNet classes), once",
                  file=sys.stderr)
            job = follow(job.id)
            if job.state != jobs.SUCCEEDED:
                print(f"error: the demo model could not be prepared: {job.error}", file=sys.stderr)
                return 1
    if args.json:
        if args.format not in ("table", "json"):
            raise ConfigError(f"--json prints JSON; it cannot be used with --format {args.format}")
        args.format = "json"
    options = TagOptions(top_k=args.top_k, threshold=args.threshold, general_threshold=args.general_threshold,
                         character_threshold=args.character_threshold, batch_size=args.batch_size,
                         underscores_to_spaces=args.underscores_to_spaces, exclude_tags=args.exclude_tags)
    engine = EngineOptions(args.engine, address=args.address, workers=args.actors)
    if args.sidecar and any("://" in str(p) for p in args.paths):
        raise ConfigError("--sidecar writes next to local images; it cannot be used with URIs")
    output = ResultFile(args.format, args.output)
    if _records_into_library(args):
        return _tag_into_library(args, options, engine, output)
    stream = tag_stream(args.paths, model_id=args.model, options=options, engine=engine)
    if len(stream) == 0:
        stream.close()
        raise no_images(args.paths)
    note = model_note(args.model)
    if note:
        print(note, file=sys.stderr)
    failed, kept = [], 0
    with tqdm(total=len(stream), unit="img", file=sys.stderr, disable=None) as bar, output as writer:
        try:
            for result in stream:
                writer.write(result)
                bar.update(1)
                if result.error:
                    failed.append(result)
                elif args.sidecar:
                    outcome = write_sidecars([result], args.sidecar, overwrite=args.overwrite)
                    kept += sum(1 for v in outcome.values() if v == "kept existing")
        finally:
            stream.close()
    if kept:
        print(f"kept {kept} existing .{args.sidecar} sidecar(s); pass --overwrite to replace them", file=sys.stderr)
    for r in failed:
        print(f"failed: {r.path}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def _records_into_library(args) -> bool:
    """Local folders go into the photo library (incremental), unless --no-library."""
    from pathlib import Path

    local = not any("://" in str(p) for p in args.paths)
    return local and not args.no_library and any(Path(p).expanduser().is_dir() for p in args.paths)


def _tag_into_library(args, options, engine, output) -> int:
    """`imgai tag FOLDER`: unchanged files come from the index, the rest is tagged and recorded;
    the output lists every file either way, cut to the options asked."""
    from tqdm import tqdm

    from ..classify.outputs import write_sidecars
    from ..library.run import tag_and_list

    failed, kept = [], 0
    with tqdm(unit="img", file=sys.stderr, disable=None) as bar, output as writer:
        def on_plan(plan):        # (a folder with no images is the library's error, before any run is recorded)
            print(f"library: {plan.summary()}", file=sys.stderr)
            bar.reset(total=len(plan.to_tag))

        def on_result(result):
            nonlocal kept
            bar.update(1)
            writer.write(result)
            if result.error:
                failed.append(result)
            elif args.sidecar:
                outcome = write_sidecars([result], args.sidecar, overwrite=args.overwrite)
                kept += sum(1 for v in outcome.values() if v == "kept existing")

        tag_and_list(args.paths, model_id=args.model, options=options, engine=engine, force=args.force,
                     on_plan=on_plan, on_result=on_result)
    if kept:
        print(f"kept {kept} existing .{args.sidecar} sidecar(s); pass --overwrite to replace them", file=sys.stderr)
    for r in failed:
        print(f"failed: {r.path}: {r.error}", file=sys.stderr)
    return 1 if failed else 0
