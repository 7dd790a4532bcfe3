"""`imgai hub search|info|download|whoami` and `imgai push`"""

from __future__ import annotations

from .output import JSON, WAIT, follow, print_json, print_table, report_job


def register(sub) -> None:
    from ..hub.search import FAMILY_NAMES, LIBRARIES, SORTS

    p = sub.add_parser("hub", help="the Hugging Face Hub: search, inspect and download supported models")
    s = p.add_subparsers(dest="hub_command", metavar="ACTION", required=True)

    search = s.add_parser("search", help="supported image-classification models on the Hub", parents=[JSON])
    search.add_argument("query", nargs="?", default="")
    search.add_argument("--family", type=_family_choice(FAMILY_NAMES), metavar="FAMILY",
                        help="only this family (`imgai hub families` lists them)")
    search.add_argument("--library", choices=LIBRARIES)
    search.add_argument("--sort", choices=list(SORTS), default="downloads")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--show-hidden", action="store_true", help="also list the hidden results and why")
    search.set_defaults(func=cmd_search)

    fam = s.add_parser("families", help="the support table: each family the conversion sweep tried, pass or fail",
                       parents=[JSON])
    fam.add_argument("--failed", action="store_true", help="only the candidates that failed, with the reason")
    fam.set_defaults(func=cmd_families)

    info = s.add_parser("info", help="one repo: support, files and sizes, labels, card summary", parents=[JSON])
    info.add_argument("repo_id", metavar="REPO_ID[@REV]")
    info.set_defaults(func=cmd_info)

    dl = s.add_parser("download", help="download into the HF cache and register (runs as a job)",
                      parents=[WAIT, JSON])
    dl.add_argument("repo_id", metavar="REPO_ID[@REV]")
    dl.set_defaults(func=cmd_download)

    who = s.add_parser("whoami", help="who is signed in (HF_TOKEN or `huggingface-cli login`)", parents=[JSON])
    who.set_defaults(func=cmd_whoami)

    push = sub.add_parser("push", help="push a converted model with its generated card to a Hub repo", parents=[JSON])
    push.add_argument("model_id")
    push.add_argument("--repo", required=True, metavar="ORG/NAME")
    push.add_argument("--private", action="store_true", help="create the repo private (if it is new)")
    push.add_argument("--revision", metavar="BRANCH", help="branch to commit to (created if missing)")
    push.set_defaults(func=cmd_push)


def _family_choice(names):
    def parse(value: str) -> str:
        return next((n for n in names if n.lower() == value.lower()), value)
    return parse


def cmd_search(args) -> int:
    from ..hub import search

    result = search(args.query, family=args.family, library=args.library, sort=args.sort, limit=args.limit)
    if args.json:
        print_json(result.to_dict())
        return 0
    from ..hub.search import COLUMNS

    print(result.message)
    if result.models:
        print_table([m.row() for m in result.models], [c.upper() for c in COLUMNS])
    if args.show_hidden and result.hidden:
        print("hidden:")
        print_table([(h["repo_id"], h.get("category", ""), h["reason"]) for h in result.hidden],
                    ["REPO ID", "WHY", "REASON"])
    return 0


def cmd_families(args) -> int:
    from ..classify.architectures import SUPPORT
    from ..presentation.support import SUPPORT_COLUMNS, support_rows, support_totals

    if args.json:
        from dataclasses import asdict

        print_json([asdict(r) for r in SUPPORT if not args.failed or not r.passed])
        return 0
    print(support_totals())
    print_table(support_rows(passed=False if args.failed else None, reason_width=80),
                [c.upper() for c in SUPPORT_COLUMNS])
    return 0


def cmd_info(args) -> int:
    from ..hub import info
    from ..hub.support import human_size

    details = info(args.repo_id)
    if args.json:
        print_json(details.to_dict())
        return 0
    m = details.model
    print(f"{details.repo_id} @ {details.sha}")
    if details.supported and m:
        print(f"supported: {m.family} — {m.library} {m.architecture}, {m.labels or '?'} labels, "
              f"license {m.license or 'unknown'}, gated: {m.gated or 'no'}")
    else:
        print(f"not supported: {details.reason}")
    if details.card_summary:
        print(f"card: {details.card_summary}")
    if details.label_names:
        print("labels: " + ", ".join(details.label_names) + (" …" if m and (m.labels or 0) > len(details.label_names)
                                                             else ""))
    print(f"download: {human_size(details.download_size)} of {human_size(details.total_size)} in the repo")
    print_table([(f["path"], human_size(f["size"]), "yes" if f["needed"] else "") for f in details.files],
                ["FILE", "SIZE", "DOWNLOADED"])
    if details.in_registry:
        print(f"in the registry as {details.in_registry}")
    elif details.registered_other_revision:
        print(f"another revision is in the registry as {details.registered_other_revision}")
    return 0


def cmd_download(args) -> int:
    from ..hub import download

    job = download(args.repo_id)
    if args.wait:
        finished = follow(job.id, show=not args.json)
        code = report_job(finished, json_out=args.json)
        if code == 0 and not args.json and finished.result:
            r = finished.result
            note = " (already registered)" if r.get("already_registered") else ""
            print(f"registered as {r['model_id']} from {r['source']}{note}")
        return code
    if args.json:
        print_json(job.to_dict())
    else:
        print(f"download queued as job {job.id}; follow it with `imgai jobs show {job.id}`")
    return 0


def cmd_whoami(args) -> int:
    from ..hub import whoami

    status = whoami()
    if args.json:
        print_json(status.to_dict())
    else:
        print(status.message)
    return 0 if status.signed_in else 1


def cmd_push(args) -> int:
    from ..hub import push_model

    result = push_model(args.model_id, args.repo, private=args.private, revision=args.revision)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"pushed {len(result.files)} files to {result.repo_id}@{result.revision} "
              f"(commit {result.commit_oid[:12]}), verified: {result.url}")
    return 0
