"""Checkpoints that ship with the kit: small trained models a notebook can evaluate right after install.

A shipped model is an *inference copy* of a model-cache checkpoint: the same format (``lrkit.train.checkpoint``),
config, step and data fingerprint, but only the EMA networks (``*_ema`` modules) and no optimizer state, so it
cannot be resumed, only evaluated. Files live in ``lrkit/checkpoints/`` (package data) next to ``index.json``::

    {"<task>/<preset>-<h>": {"file": "<task>-<preset>.pt", "sha256": str, "bytes": int, "step": int,
                             "shipped": ISO time, "source": the model-cache run it was copied from}}

The key is the model cache's folder name (``models.model_dir``): the whole config and the training data's
fingerprint, so a shipped file is used exactly where training here would have produced the same model, and a
changed preset or dataset trains as before. Every use checks the sha256 (a damaged or edited file is an error
naming the fix, never silently evaluated). This module knows no method.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path

import torch

from lrkit.fsutil import atomic_open
from lrkit.train.checkpoint import FORMAT, load_checkpoint

__all__ = ["shipped_dir", "shipped_index", "find_shipped", "is_shipped", "ship", "inference_copy",
           "resolve_checkpoint", "ShippedCheckpointError"]


class ShippedCheckpointError(ValueError):
    """A shipped checkpoint is missing or does not match its recorded sha256."""


def shipped_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "checkpoints"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shipped_index(root: Path | None = None) -> dict[str, dict]:
    index = (root or shipped_dir()) / "index.json"
    return json.loads(index.read_text()) if index.is_file() else {}


def find_shipped(task: str, model_name: str, root: Path | None = None) -> Path | None:
    """The shipped checkpoint of the model cache entry ``<task>/<model_name>``, checked against its sha256; None
    when none ships."""
    root = root or shipped_dir()
    entry = shipped_index(root).get(f"{task}/{model_name}")
    if entry is None:
        return None
    path = root / entry["file"]
    if not path.is_file():
        raise ShippedCheckpointError(
            f"shipped checkpoint {path} is listed in {root / 'index.json'} but missing; reinstall lrkit (or "
            "remove its entry from index.json to train the model here)")
    digest = _sha256(path)
    if digest != entry["sha256"]:
        raise ShippedCheckpointError(
            f"shipped checkpoint {path} has sha256 {digest[:16]}..., not the recorded {entry['sha256'][:16]}...: the "
            "file is damaged or was changed; reinstall lrkit (or remove its entry from index.json to train here)")
    return path


def resolve_checkpoint(value: str | Path, task: str, root: Path | None = None) -> Path:
    """A checkpoint argument: a file path as given, or ``shipped:<preset>`` (e.g. ``shipped:celebahq128_cpu``) for
    the shipped model of that preset, sha256-checked."""
    text = str(value)
    if not text.startswith("shipped:"):
        return Path(value)
    preset = text[len("shipped:"):]
    root = root or shipped_dir()
    names = {k.split("/", 1)[1].rsplit("-", 1)[0]: k.split("/", 1)[1] for k in shipped_index(root)
             if k.startswith(f"{task}/")}
    if preset not in names:
        raise ShippedCheckpointError(
            f"no {task} model for preset {preset!r} ships with lrkit (shipped: {', '.join(sorted(names)) or 'none'}); "
            "pass one of those, or a checkpoint file")
    return find_shipped(task, names[preset], root)


def is_shipped(path: str | Path) -> bool:
    """Whether ``path`` is one of the kit's shipped checkpoints (labels say so)."""
    return Path(path).resolve().parent == shipped_dir()


def inference_copy(src: str | Path, dst: str | Path) -> dict:
    """Write ``src`` (a full checkpoint) to ``dst`` with only its ``*_ema`` modules and no optimizer state;
    returns the written checkpoint's header (task, config, step, data fingerprint)."""
    ckpt = load_checkpoint(src)
    modules = {k: v for k, v in ckpt["modules"].items() if k.endswith("_ema")}
    if not modules:
        raise ValueError(f"{src} holds no EMA networks ({sorted(ckpt['modules'])}); only EMA models are shipped")
    out = {**ckpt, "modules": modules, "optimizers": {},
           "extra": {**ckpt.get("extra", {}), "inference_copy_of": str(src)}}
    assert out["format"] == FORMAT
    with atomic_open(Path(dst), "wb") as fh:
        torch.save(out, fh)
    return {k: out[k] for k in ("task", "config", "step", "data_fingerprint")}


def ship(src: str | Path, model_name: str, root: Path | None = None) -> Path:
    """Copy the model-cache checkpoint ``src`` of ``<task>/<model_name>`` into the shipped set and index it."""
    root = root or shipped_dir()
    root.mkdir(parents=True, exist_ok=True)
    task = load_checkpoint(src, mmap=True)["task"]
    preset = model_name.rsplit("-", 1)[0]
    dst = root / f"{task}-{preset}.pt"
    head = inference_copy(src, dst)
    index = shipped_index(root)
    index[f"{task}/{model_name}"] = {
        "file": dst.name, "sha256": _sha256(dst), "bytes": dst.stat().st_size, "step": head["step"],
        "shipped": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": str(Path(src).parent.parent.name)}
    with atomic_open(root / "index.json", "w") as fh:
        fh.write(json.dumps(dict(sorted(index.items())), indent=1) + "\n")
    return dst
