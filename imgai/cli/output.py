"""Printing results: JSON for programs, aligned tables for people."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence


def print_json(data: Any, file=None) -> None:
    json.dump(data, file or sys.stdout, indent=2, default=str)
    (file or sys.stdout).write("\n")


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str], file=None) -> None:
    rows = [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    out = file or sys.stdout
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip() + "\n")
    for r in rows:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() + "\n")


def wait_with_bar(job_id: str, *, json_out: bool = False, quiet: bool = False) -> int:
    """Follow a job with a tqdm bar; exit code 0 if it succeeded (quiet: nothing on stdout)."""
    from tqdm import tqdm

    from .. import jobs

    with tqdm(total=100, unit="%", disable=json_out, file=sys.stderr,
              bar_format="{l_bar}{bar}| {n:.0f}/{total}% [{elapsed}] {postfix}") as bar:
        def on_progress(job):
            bar.n = round(job.progress * 100, 1)
            bar.set_postfix_str(job.stage[:60], refresh=False)
            bar.refresh()
        job = jobs.wait(job_id, on_progress=on_progress)
    if json_out:
        print_json(job.to_dict())
    elif job.state == jobs.SUCCEEDED:
        print(f"job {job.id} succeeded", file=sys.stderr if quiet else sys.stdout)
    else:
        print(f"job {job.id} {job.state}: {job.error}", file=sys.stderr)
    return 0 if job.state == jobs.SUCCEEDED else 1
