"""`python -m workbench.evaluate.worker JOB_DIR`: the process of an evaluation started in the background
(`background.start_evaluation`, `background.resume_in_background`); a module of its own, so that running it
does not import `background` a second time."""

from __future__ import annotations

import sys
from pathlib import Path

from .background import run_eval_job

if __name__ == "__main__":
    sys.exit(run_eval_job(Path(sys.argv[1])))
