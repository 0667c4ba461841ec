"""Run ids: UTC time + short git hash, unique even for runs started in the same second."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

RUN_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-z]+(-\d+)?$")


def base_run_id(git_short: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{git_short}"


def create_run_dir(runs_root: Path, git_short: str, now: dt.datetime | None = None) -> tuple[str, Path]:
    """Create ``runs_root/<id>`` and return ``(id, path)``.

    ``os.mkdir`` fails if the folder exists, so two processes can never share a run folder: the loser
    takes the next suffix (``-2``, ``-3``, ...).
    """
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    base = base_run_id(git_short, now)
    for n in range(1, 10_000):
        run_id = base if n == 1 else f"{base}-{n}"
        try:
            os.mkdir(runs_root / run_id)
        except FileExistsError:
            continue
        return run_id, runs_root / run_id
    raise RuntimeError(f"could not create a unique run folder under {runs_root}")
