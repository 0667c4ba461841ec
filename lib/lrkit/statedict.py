"""Comparing two name -> tensor mappings (state_dicts, named parameters): which keys are missing, unexpected, or
have another shape. Checkpoint restore, official-file loading and the EMA update all report mismatches from this
one comparison, each in its own words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = ["StateDiff", "state_diff"]


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
