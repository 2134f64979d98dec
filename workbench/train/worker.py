"""`python -m workbench.train.worker RUN_DIR [--resume]`: the background process of one training run.

It reads run.json, trains, and writes everything into the run folder; it never opens the store.
SIGTERM asks it to stop at the end of the current step (like `cancel_run`), so a checkpoint is kept.
"""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path

from .config import TrainConfig
from .folder import RunFolder, process_rank
from .trainer import Cancelled, train


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m workbench.train.worker RUN_DIR [--resume]", file=sys.stderr)
        return 2
    folder = RunFolder(Path(argv[0]))
    spec = folder.spec()
    if not spec:
        print(f"{folder.spec_path} is missing or unreadable", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: folder.cancel_path.touch())
    try:
        train(
            spec["export_dir"],
            TrainConfig.from_dict(spec["config"]),
            folder.path,
            init_adapter=spec.get("init_adapter"),
            resume="--resume" in argv[1:],
            models_dir=Path(spec["models_dir"]) if spec.get("models_dir") else None,
        )
    except Cancelled:
        return 3
    except BaseException:
        if process_rank() == 0:
            folder.log("traceback:\n" + traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
