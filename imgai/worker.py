"""`python -m imgai.worker JOB_ID`: runs one job (started by imgai.jobs.dispatch)."""

import sys

from .jobs import run_in_worker

if __name__ == "__main__":
    sys.exit(run_in_worker(sys.argv[1]))
