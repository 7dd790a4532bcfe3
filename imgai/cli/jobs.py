"""`imgai jobs list|show|cancel`"""

from __future__ import annotations

import time

from .. import jobs
from .output import JSON, print_json, print_table


def register(sub) -> None:
    p = sub.add_parser("jobs", help="list, inspect and cancel long-running jobs")
    s = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    ls = s.add_parser("list", help="recent jobs, newest first", parents=[JSON])
    ls.add_argument("--state", choices=jobs.ACTIVE + jobs.FINISHED)
    ls.add_argument("--kind")
    ls.set_defaults(func=cmd_list)
    show = s.add_parser("show", help="one job with its events", parents=[JSON])
    show.add_argument("job_id")
    show.set_defaults(func=cmd_show)
    cancel = s.add_parser("cancel", help="cancel a queued or running job", parents=[JSON])
    cancel.add_argument("job_id")
    cancel.set_defaults(func=cmd_cancel)


def _when(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def cmd_list(args) -> int:
    found = jobs.list_jobs(kind=args.kind, states=(args.state,) if args.state else None)
    if args.json:
        print_json([j.to_dict() for j in found])
    else:
        print_table([(j.id, j.kind, j.subject, j.state, f"{j.progress:.0%}", j.stage[:40], _when(j.created_at),
                      j.error or "") for j in found],
                    ["ID", "KIND", "SUBJECT", "STATE", "PROGRESS", "STAGE", "CREATED", "ERROR"])
    return 0


def cmd_show(args) -> int:
    job = jobs.get(args.job_id)
    evs = jobs.events(job.id)
    if args.json:
        print_json({**job.to_dict(), "events": evs})
        return 0
    for key, value in job.to_dict().items():
        print(f"{key:12} {value}")
    print("events:")
    for e in evs:
        print(f"  {_when(e['at'])} {e['level']:5} {e['message']}")
    return 0


def cmd_cancel(args) -> int:
    job = jobs.cancel(args.job_id)
    if args.json:
        print_json(job.to_dict())
    else:
        print(f"job {job.id} {job.state}")
    return 0
