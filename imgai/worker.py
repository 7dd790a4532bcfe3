"""`python -m imgai.worker JOB_ID`: runs one job (started by imgai.jobs.dispatch), at a lower CPU
priority than the app that started it (imgai.config.job_niceness), so long work never starves
the people using the app."""

import os
import sys

from . import words
from .config import job_niceness
from .jobs import run_in_worker

if __name__ == "__main__":
    os.nice(job_niceness())
    words.use(words.RAW)   # stored messages keep their markers; the app or CLI renders them when read
    sys.exit(run_in_worker(sys.argv[1]))
