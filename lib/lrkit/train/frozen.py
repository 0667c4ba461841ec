"""``frozen(*modules)``: a block in which some networks get no parameter gradients (a GAN's generator step)."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["frozen"]


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module):
    """Inside, the parameters of ``modules`` that required gradients do not (gradients still flow *through* the
    modules to their inputs); afterwards exactly those require them again, whatever happens inside."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
