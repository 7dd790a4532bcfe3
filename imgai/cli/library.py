"""`imgai library status|errors|review|decide|thresholds|search|export|rebuild`: the photo library
that `imgai tag FOLDER` records into (see imgai/library/).

    review     pending tags (between the review floor and the threshold) as a table, --json or --csv
    decide     decisions from arguments (PATH LABEL accept|reject|add|clear) or a JSON/CSV file
               (--file, "-" for stdin); --export prints every decision as JSON (for a rebuild)
    search     "cat -dog" [--min-score] [--model]
    export     csv | json (scores and review state), txt (kohya captions) | xmp (merged sidecars)
    rebuild    move a damaged index aside and start afresh, keeping decisions (then `imgai tag FOLDER`)
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from .output import JSON, print_json, print_table


def register(sub) -> None:
    p = sub.add_parser("library", help="the photo library: review, decide, search, export, rebuild")
    lib = p.add_subparsers(dest="library_command", metavar="ACTION", required=True)

    s = lib.add_parser("status", help="what the library holds", parents=[JSON])
    s.set_defaults(func=cmd_status)
    s = lib.add_parser("errors", help="files that could not be read, with the reason", parents=[JSON])
    s.set_defaults(func=cmd_errors)

    s = lib.add_parser("review", help="tags waiting for a person's decision", parents=[JSON])
    s.add_argument("--csv", action="store_true", help="print CSV (path,label,category,score,model_id)")
    s.add_argument("--label", help="only this tag")
    s.add_argument("--model", help="only this model's scores")
    s.add_argument("--limit", type=int, help="at most this many")
    s.set_defaults(func=cmd_review)

    s = lib.add_parser("decide", help="accept, reject or add tags (arguments or a file)", parents=[JSON])
    s.add_argument("decision", nargs="*", metavar="PATH LABEL ACTION",
                   help="triples: an image, a tag, and accept | reject | add | clear")
    s.add_argument("--file", help="decisions as JSON ([{path,label,action}]) or CSV (path,label,action); - for stdin")
    s.add_argument("--accept-all", metavar="LABEL", help="accept every pending LABEL scoring ≥ --min-score")
    s.add_argument("--min-score", type=float, default=0.0, help="with --accept-all")
    s.add_argument("--export", action="store_true", help="print every decision as JSON (keep it for a rebuild)")
    s.add_argument("--import", dest="import_file", help="take decisions exported before (JSON)")
    s.set_defaults(func=cmd_decide)

    s = lib.add_parser("thresholds", help="show or set the review floor and accept threshold per category",
                       parents=[JSON])
    s.add_argument("category", nargs="?", help="general | character | classifier")
    s.add_argument("--review", type=float, help="tags from here up to --accept are shown for review")
    s.add_argument("--accept", type=float, help="tags from here up are accepted")
    s.set_defaults(func=cmd_thresholds)

    s = lib.add_parser("search", help='images with tags: "cat -dog"', parents=[JSON],
                       description='Images with every tag given and none of the ones after a "-": '
                                   'imgai library search cat -dog (or "cat -dog" as one argument; '
                                   'a quoted "long hair" is one tag). A word may start with "-" anywhere.')
    s.add_argument("query", nargs="+", metavar="TAG", help='tags; -tag excludes one')
    s.add_argument("--min-score", type=float, help="a model's score counts from here (default: the accept threshold)")
    s.add_argument("--model", help="only this model's scores")
    s.add_argument("--limit", type=int, default=100, help="images listed (the count covers all)")
    s.set_defaults(func=cmd_search, dash_words=True)     # "-cat" is a word here (imgai/cli/__init__.py)

    s = lib.add_parser("export", help="csv/json with scores and review state; txt captions; xmp sidecars",
                       parents=[JSON])
    s.add_argument("format", choices=("csv", "json", "txt", "xmp"))
    s.add_argument("--output", help="csv/json: write here instead of stdout")
    s.add_argument("--folder", help="only images under this folder")
    s.add_argument("--model", help="only this model's scores")
    s.add_argument("--reviewed-only", action="store_true", help="txt/xmp: only tags a person accepted or added")
    s.add_argument("--all", action="store_true", help="csv/json: tags below the review floor too")
    s.add_argument("--overwrite", action="store_true", help="txt: replace existing; xmp: merge into existing")
    s.add_argument("--underscores-to-spaces", action="store_true", help="long_hair → long hair")
    s.add_argument("--exclude-tags", default="", help="comma-separated tags never written")
    s.set_defaults(func=cmd_export)

    s = lib.add_parser("rebuild", help="move a damaged index aside and start again, keeping decisions",
                       parents=[JSON])
    s.add_argument("--decisions", help="a decisions file from `imgai library decide --export`")
    s.set_defaults(func=cmd_rebuild)


def cmd_status(args) -> int:
    from ..library.search import status

    info = status()
    if args.json:
        print_json(info)
        return 0
    images = ", ".join(f"{n:,} {s}" for s, n in sorted(info["images"].items())) or "no images"
    print(f"{info['index']} ({info['bytes'] / 1e6:.1f} MB): {images}; {info['scores']:,} scores, "
          f"{info['decisions']:,} decisions")
    for m in info["models"]:
        print(f"  model {m['model_id']} ({m['fingerprint'][:12]}): {m['images']:,} images tagged")
    for r in info["runs"]:
        print(f"  run {r['id']} {r['state']}: {r['model_id']} {', '.join(f'{k} {v}' for k, v in r['counts'].items() if v)}"
              + (f" — {r['error']}" if r["error"] else ""))
    return 0


def cmd_errors(args) -> int:
    from ..library.review import errors

    rows = errors()
    if args.json:
        print_json(rows)
    else:
        print_table([(r["path"], r["error"]) for r in rows], ["path", "error"])
    return 0


def cmd_review(args) -> int:
    from ..library.review import pending, progress

    rows = [p.to_dict() for p in pending(label=args.label, model_id=args.model, limit=args.limit)]
    if args.json:
        print_json(rows)
    elif args.csv:
        w = csv.writer(sys.stdout)
        w.writerow(["path", "label", "category", "score", "model_id"])
        w.writerows([[r["path"], r["label"], r["category"] or "", f"{r['score']:.6f}", r["model_id"]] for r in rows])
    else:
        done, total = progress()
        print_table([(r["path"], r["label"], f"{r['score']:.3f}") for r in rows], ["path", "tag", "score"])
        print(f"{done} of {total} reviewed", file=sys.stderr)
    return 0


def _read_decisions(source: str) -> list[dict]:
    from ..errors import ConfigError

    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and not {"path", "label", "action"} <= set(rows[0]):
        raise ConfigError(f"{source}: a CSV of decisions needs the columns path,label,action; it has {list(rows[0])}")
    return rows


def cmd_decide(args) -> int:
    from ..errors import ConfigError
    from ..library import review

    if args.export:
        print_json(review.export_decisions())
        return 0
    if args.import_file:
        n = review.import_decisions(json.loads(Path(args.import_file).read_text(encoding="utf-8")))
        print(f"imported {n} decision(s)")
        return 0
    if args.accept_all:
        n = review.accept_all(args.accept_all, args.min_score)
        print(f"accepted {args.accept_all!r} on {n} image(s) scoring ≥ {args.min_score}")
        return 0
    if len(args.decision) % 3:
        raise ConfigError(f"decisions come in triples PATH LABEL ACTION; got {len(args.decision)} value(s)")
    items = [dict(path=p, label=l, action=a) for p, l, a in zip(*[iter(args.decision)] * 3)]
    if args.file:
        items += _read_decisions(args.file)
    if not items:
        raise ConfigError("no decision given: PATH LABEL accept|reject|add|clear, or --file FILE")
    n = review.decide(items)
    done, total = review.progress()
    if args.json:
        print_json({"stored": n, "reviewed": done, "total": total})
    else:
        print(f"stored {n} decision(s); {done} of {total} reviewed")
    return 0


def cmd_thresholds(args) -> int:
    from ..errors import ConfigError
    from ..library.review import set_thresholds, thresholds

    if args.review is not None or args.accept is not None:
        if not args.category:
            raise ConfigError("name the category to set: general, character or classifier")
        limits = set_thresholds(args.category, review=args.review, accept=args.accept)
    else:
        limits = thresholds()
    if args.json:
        print_json(limits.to_dict())
    else:
        print_table([(k, v["review"], v["accept"]) for k, v in limits.to_dict().items()],
                    ["category", "review from", "accept from"])
    return 0


def cmd_search(args) -> int:
    from ..library.search import search

    text = " ".join(args.query)
    result = search(text, min_score=args.min_score, model_id=args.model, limit=args.limit)
    if args.json:
        print_json(result.to_dict())
        return 0
    for hit in result.hits:
        print(f"{hit.path}\t" + ", ".join(f"{t.label} ({t.score:.2f})" if t.score is not None else t.label
                                            for t in hit.tags))
    print(f"{result.total} image(s) match {text!r}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from ..library.export import export

    outcome = export(args.format, output=args.output, folder=args.folder, model_id=args.model,
                     reviewed_only=args.reviewed_only, include_below=args.all, overwrite=args.overwrite,
                     underscores_to_spaces=args.underscores_to_spaces, exclude_tags=args.exclude_tags)
    if args.json and (args.format in ("txt", "xmp") or args.output):
        print_json({k: v for k, v in outcome.items() if k != "text"})     # what was written, for a script
        return 0
    if args.format in ("csv", "json"):
        if outcome["text"] is not None:
            sys.stdout.write(outcome["text"] + ("" if outcome["text"].endswith("\n") else "\n"))
        else:
            print(f"wrote {outcome['rows']} row(s) to {args.output}", file=sys.stderr)
        return 0
    print(f"wrote {outcome['written']} .{args.format} sidecar(s)"
          + (f"; kept {outcome['kept existing']} existing (pass --overwrite to "
             f"{'merge into' if args.format == 'xmp' else 'replace'} them)" if outcome["kept existing"] else ""))
    return 0


def cmd_rebuild(args) -> int:
    from ..library.repair import rebuild

    outcome = rebuild(decisions_file=args.decisions)
    if args.json:
        print_json(outcome)
    else:
        if outcome["moved_to"]:
            print(f"the old index is kept as {outcome['moved_to']}")
        print(f"a fresh index, with {outcome['decisions']} decision(s) carried over; run `imgai tag FOLDER` "
              "to bring the scores back")
    return 0
