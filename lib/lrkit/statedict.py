"""Comparing two name -> tensor mappings (state_dicts, named parameters): which keys are missing, unexpected, or
have another shape. Checkpoint restore, official-file loading and the EMA update all report mismatches from this
one comparison, each in its own words."""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["StateDiff", "state_diff", "load_tensor_file", "as_state_dict"]


@dataclass(frozen=True)
class StateDiff:
    missing: list[str]  # keys of ``expected`` absent from ``given`` (in ``expected``'s order)
    unexpected: list[str]  # keys of ``given`` absent from ``expected`` (in ``given``'s order)
    shapes: list[tuple[str, tuple, tuple]]  # (key, shape in ``given``, shape in ``expected``) for tensor pairs

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)


def state_diff(expected: Mapping, given: Mapping, ignore_unexpected=()) -> StateDiff:
    """How ``given`` differs from ``expected``; keys in ``ignore_unexpected`` are not reported as unexpected.
    Shapes are compared only where both values are tensors (a state_dict may hold other extra state)."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected and k not in ignore_unexpected]
    shapes = [(k, tuple(given[k].shape), tuple(expected[k].shape)) for k in expected
              if k in given and isinstance(given[k], torch.Tensor) and isinstance(expected[k], torch.Tensor)
              and given[k].shape != expected[k].shape]
    return StateDiff(missing, unexpected, shapes)


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head


def load_tensor_file(path: str | os.PathLike, what: str, *, error: type[Exception] = ValueError,
                     missing: type[Exception] = FileNotFoundError) -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)`` for released weight files, with one clear
    ``error`` for each way it fails (an HTML page saved instead of the weights, pickled objects, a truncated or
    unreadable file) and ``missing`` when there is no file. ``map_location``: released files may hold CUDA tensors
    (PULSE's do) and must load on a CPU-only machine too."""
    path = Path(path)
    if not path.is_file():
        raise missing(f"{what} not found: {path}")
    if _looks_like_html(path):
        raise error(f"{path} is an HTML page, not {what}: the download failed (Google Drive and Dropbox answer "
                    "'quota exceeded' or a virus-scan page with HTML); download the file again, or by hand in a browser")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "GLOBAL" in msg or "allowed global" in msg or "Unsupported global" in msg:
            # weights_only refuses pickled classes/functions: not a plain dict of tensors, so not a released file.
            found = re.search(r"(\S+) was not an allowed global", msg)
            name = found.group(1) if found else "a Python object"
            raise error(f"{path} is not a plain tensor file ({what}): it pickles {name}, which "
                        "torch.load(weights_only=True) refuses; only dicts of tensors are read") from exc
        raise error(f"{path} is not a readable PyTorch checkpoint ({what}); check that the download completed") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise error(f"{path} is not a readable PyTorch checkpoint ({what}): {exc}; check that the download "
                    "completed") from exc


def as_state_dict(obj: object, where: str) -> dict[str, torch.Tensor]:
    """``obj`` as a state_dict (a mapping of names to tensors, else a ValueError naming ``where``), without a
    ``module.`` prefix present on every key (a state_dict saved from the nn.DataParallel wrapper)."""
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in obj.items()):
        raise ValueError(f"{where} is not a state_dict (a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        return {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)
