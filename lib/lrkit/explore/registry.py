"""The methods the explorer knows (one adapter per method package) and the models it can find for them.

A new method joins by adding ``methods/<method>/explore.py`` with an ``ADAPTER`` and one line in ``ADAPTERS``.
Models are found in: the checkpoints shipped with the kit, the model cache (``runs/models/<task>/*``), training
runs (``runs/train/*``), checkpoint files given by path, and released weights in the weights cache (the adapters
look there themselves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lrkit.explore.core import MethodAdapter, ModelEntry, checkpoint_headers
from lrkit.methods.i2ilr.explore import ADAPTER as I2ILR
from lrkit.methods.pulse.explore import ADAPTER as PULSE
from lrkit.methods.srnam.explore import ADAPTER as SRNAM
from lrkit.methods.stargan2.explore import ADAPTER as STARGAN2

__all__ = ["ADAPTERS", "adapter", "candidate_paths", "find_models"]

ADAPTERS: tuple[MethodAdapter, ...] = (I2ILR, STARGAN2, PULSE, SRNAM)


def adapter(name: str) -> MethodAdapter:
    for a in ADAPTERS:
        if a.name == name:
            return a
    raise KeyError(f"no explorer adapter {name!r}; known: {', '.join(a.name for a in ADAPTERS)}")


def candidate_paths(runs_dir: str | Path | None = None, given: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``[(checkpoint path, where it was found)]``: shipped first, then the model cache, training runs, given files."""
    from lrkit.train.shipped import shipped_dir, shipped_index

    out = [(str(shipped_dir() / e["file"]), "shipped") for _, e in sorted(shipped_index().items())]
    if runs_dir is not None and Path(runs_dir).is_dir():
        runs = Path(runs_dir)
        out += [(str(p), "model cache") for p in sorted(runs.glob("models/*/*/checkpoints/latest.pt"))]
        out += [(str(p), "training run") for p in sorted(runs.glob("train/*/checkpoints/latest.pt"))]
    for g in given:
        if not Path(g).is_file():
            raise FileNotFoundError(f"checkpoint {g} does not exist; give an lrkit checkpoint (a run's "
                                    "checkpoints/latest.pt) or leave checkpoints empty")
        out.append((str(g), "given path"))
    return out


def find_models(runs_dir: str | Path | None = None, given: Sequence[str] = ()) -> tuple[list[ModelEntry], list[dict]]:
    """(every model the adapters make of the checkpoints found, the files that could not be read with why)."""
    headers = checkpoint_headers(candidate_paths(runs_dir, given))
    entries = [e for a in ADAPTERS for e in a.find(headers)]
    return entries, headers.get("unreadable", [])
