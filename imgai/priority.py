"""A job's CPU priority below the app's (`IMGAI_JOB_NICE`), for a fresh worker and a forked one alike.
Standard library only: the warm process (imgai/warm.py) uses it before it imports anything of imgai's."""

from __future__ import annotations

import os


def lower_priority(niceness: int, *, base: int | None = None) -> None:
    """Run at `niceness` below `base` (the app's nice; default this process's own). The worker leads
    its own session (so a cancel can signal its whole process group), and with the kernel's
    autogroup scheduling (on by default on desktops and on the hosts of containers) each session is
    one group that competes with the app's group as an equal: a process's own nice only ranks it
    inside its group. So the group's nice is lowered too. A forked worker that already runs at least
    that low stays where it is (raising a priority needs privileges)."""
    current = os.nice(0)
    target = min(19, (current if base is None else base) + niceness)
    if target > current:
        os.nice(target - current)
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(niceness))
    except OSError:      # no autogroup (kernel without it, or /proc read-only): the process nice is all
        pass
