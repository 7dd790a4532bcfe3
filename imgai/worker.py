"""`python -m imgai.worker JOB_ID`: runs one job (started by imgai.jobs.dispatch), at a lower CPU
priority than the app that started it (imgai.config.job_niceness), so long work never starves
the people using the app."""

import os
import sys

from . import words
from .config import job_niceness
from .jobs import run_in_worker


def lower_priority(niceness: int) -> None:
    """Run at `niceness` below the app. The worker leads its own session (so a cancel can signal its
    whole process group), and with the kernel's autogroup scheduling (on by default on desktops and
    on the hosts of containers) each session is one group that competes with the app's group as an
    equal: a process's own nice only ranks it inside its group. So the group's nice is lowered too."""
    os.nice(niceness)
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(niceness))
    except OSError:      # no autogroup (kernel without it, or /proc read-only): the process nice is all
        pass


if __name__ == "__main__":
    lower_priority(job_niceness())
    words.use(words.RAW)   # stored messages keep their markers; the app or CLI renders them when read
    sys.exit(run_in_worker(sys.argv[1]))
