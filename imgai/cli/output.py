"""What every command shares: JSON for programs, aligned tables for people, the `--json` and
`--wait` options (parent parsers), and the one way a command follows a job."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Iterable, Sequence

# Parent parsers: `sub.add_parser(name, parents=[JSON])`, never a hand-made `--json`.
JSON = argparse.ArgumentParser(add_help=False)
JSON.add_argument("--json", action="store_true", help="print JSON (for programs) instead of text")
WAIT = argparse.ArgumentParser(add_help=False)
WAIT.add_argument("--wait", action="store_true",
                  help="follow the job to its end: a progress bar on a terminal, a line per stage otherwise")


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


def follow(job_id: str, *, show: bool = True, detail: Callable[[Any], str] | None = None):
    """Follow a job until it ends and return it: the one `--wait` of every command.

    On stderr, unless `show` is false (JSON output): a tqdm bar on a terminal, and a line per
    stage otherwise (logs, pipes, CI). `detail(job)`, asked at each new stage, adds a note
    (training: the last epoch's loss and accuracy)."""
    from .. import jobs

    terminal = show and sys.stderr.isatty()
    bar, last_stage, seen = None, None, 0
    if terminal:
        from tqdm import tqdm

        bar = tqdm(total=100, unit="%", file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}/{total}% [{elapsed}] {postfix}")

    def label(job, stage: str) -> str:
        note = detail(job) if detail else ""
        return stage + (f" ({note})" if note else "")

    def on_progress(job) -> None:
        nonlocal last_stage, seen
        if bar is not None:
            bar.n = round(job.progress * 100, 1)
            if job.stage != last_stage:
                last_stage = job.stage
                bar.set_postfix_str(label(job, job.stage)[:80], refresh=False)
            bar.refresh()
        elif show:
            # from the job's stage events, not its current stage: a poll must not skip a short stage
            for event in jobs.events(job_id, after=seen):
                seen = event["seq"]
                data = event["data"] or {}
                if jobs.STAGE_PROGRESS in data and event["message"] != last_stage:
                    last_stage = event["message"]
                    print(f"{data[jobs.STAGE_PROGRESS]:4.0%} {label(job, last_stage)}", file=sys.stderr, flush=True)

    try:
        return jobs.wait(job_id, on_progress=on_progress)
    finally:
        if bar is not None:
            bar.close()


def running_or_submit(submit: Callable[[], Any], *, subject: str, kinds: Sequence[str], wait: bool,
                      show: bool = True):
    """The job to follow: with `--wait`, work of one of `kinds` already queued or running on
    `subject` is followed (a note on stderr) instead of refused or queued twice; else `submit()`."""
    from .. import jobs

    if wait:
        running = jobs.active_job(subject, *kinds)
        if running is not None:
            if show:
                print(f"{running.kind} job {running.id} is already {running.state} for {subject}; following it",
                      file=sys.stderr)
            return running
    return submit()


def report_job(job, *, json_out: bool) -> int:
    """The end of a followed job, for commands with nothing more to say: exit 0 if it succeeded."""
    from .. import jobs

    if json_out:
        print_json(job.to_dict())
    elif job.state == jobs.SUCCEEDED:
        print(f"job {job.id} succeeded")
    else:
        print(f"job {job.id} {job.state}: {job.error}", file=sys.stderr)
    return 0 if job.state == jobs.SUCCEEDED else 1
