"""The model cache: one trained model per (task, config, training data), reused, resumed, file-locked.

Notebooks are cheap to re-run because a model lives in ``<runs>/models/<task>/<preset>-<h>`` where ``h`` hashes
the whole config *and* the content fingerprint of the data it trains on: a changed config or another dataset
folder never reuses a stale model. A finished model is reused, an unfinished one is resumed (one that died before
its first checkpoint starts over, its files kept under ``abandoned/``), and a file lock keeps two notebooks of a
parallel batch from training the same model twice. A model that ships with the kit (``lrkit.train.shipped``: the
same config and data) is used as is, unless ``LRKIT_IGNORE_SHIPPED=1`` asks to train it here. This module knows no method: the caller
(a method package) passes its task name, its train function and the fingerprint of its training set.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from lrkit.train.checkpoint import checkpoint_step
from lrkit.train.shipped import find_shipped

__all__ = ["model_dir", "ensure_model", "ModelNotShipped"]


class ModelNotShipped(FileNotFoundError):
    """A notebook that only evaluates needs a model that neither ships nor is in the model cache."""


def model_dir(cfg, runs_root: str | Path, *, task: str, data_fingerprint: str) -> Path:
    """Where the model of ``cfg`` (a config with ``to_dict()`` and ``preset``) trained on that data lives."""
    key = json.dumps({"config": cfg.to_dict(), "data": data_fingerprint}, sort_keys=True)
    h = hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path(runs_root) / "models" / task / f"{cfg.preset}-{h}"


def _set_aside_unfinished_start(run_dir: Path) -> None:
    """A run that died before its first checkpoint (a crash, a killed kernel) leaves its config/losses/samples and
    nothing to resume: keep them under ``abandoned/<time>/`` (never deleted) so a new run can start in the folder."""
    started = [p for p in (run_dir / "config.json", run_dir / "losses.jsonl", run_dir / "samples") if p.exists()]
    if not started:
        return
    dest = run_dir / "abandoned" / time.strftime("%Y%m%dT%H%M%S")
    n = 0
    while dest.exists():
        n += 1
        dest = dest.with_name(f"{dest.name.split('.')[0]}.{n}")
    dest.mkdir(parents=True)
    for p in started:
        p.rename(dest / p.name)
    print(f"model cache: {run_dir.name} had a run that stopped before its first checkpoint; its files are kept in "
          f"{dest.relative_to(run_dir)} and training starts over")


def ensure_model(cfg, runs_root: str | Path, *, task: str, train_fn: Callable, data_fingerprint: str,
                 data_root: str | None = None, device: str = "cpu", progress: bool = True,
                 train: bool = True, use_shipped: bool = True) -> Path:
    """The checkpoint of ``cfg`` trained to ``cfg.steps`` on the data whose fingerprint is given: shipped, reused,
    resumed or trained with ``train_fn(cfg, run_dir, data_root=, device=, resume=, progress=)``. ``train=False``:
    only a shipped or finished one (else :class:`ModelNotShipped`). ``use_shipped=False``: never the shipped copy
    (a training notebook shows the run's losses, which a shipped inference copy does not carry)."""
    run_dir = model_dir(cfg, runs_root, task=task, data_fingerprint=data_fingerprint)
    if use_shipped and os.environ.get("LRKIT_IGNORE_SHIPPED", "") in ("", "0"):
        shipped = find_shipped(task, run_dir.name)  # the same config and data, trained and shipped with the kit
        if shipped is not None:
            return shipped
    latest = run_dir / "checkpoints" / "latest.pt"
    if not train:
        if latest.exists() and checkpoint_step(latest, task=task) >= cfg.steps:
            return latest
        raise ModelNotShipped(
            f"{task} model {run_dir.name} ({cfg.preset}) is evaluated here but neither ships with this lrkit nor is "
            f"trained in {run_dir.parent}: reinstall lrkit, train it (the {cfg.preset} preset), or pass -p steps=N "
            "to train a miniature here instead")
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or the process dies
        try:
            if latest.exists() and checkpoint_step(latest, task=task) >= cfg.steps:
                return latest
            if not latest.exists():
                _set_aside_unfinished_start(run_dir)
            train_fn(cfg, run_dir, data_root=data_root, device=device, resume=latest.exists(), progress=progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return latest
