"""`python -m imgai.worker JOB_ID`: runs one job (started by imgai.jobs.dispatch)."""

import sys

from . import words
from .jobs import run_in_worker

if __name__ == "__main__":
    words.use(words.RAW)   # stored messages keep their markers; the app or CLI renders them when read
    sys.exit(run_in_worker(sys.argv[1]))
