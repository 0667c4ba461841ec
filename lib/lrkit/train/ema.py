"""Exponential moving average (EMA) of a network's weights.

GAN papers evaluate an EMA copy of the generator (I2I-LR and StarGAN v2 both use beta = 0.999): the average of
recent weights is far less noisy than the weights of any single step. The EMA copy is a plain ``nn.Module`` of
the same class, kept in eval mode with gradients off, and updated after each optimizer step with
``ema_update``.

Parameters are averaged; buffers are *copied*. Buffers hold running state that is not a weight (BatchNorm
statistics, and the power-iteration vectors ``u``/``v`` of spectral-norm parametrizations). Copying u/v keeps the
EMA's spectral-norm estimate in step with the trained network (the EMA net runs in eval mode, where spectral
norm does no power iteration of its own). With ``torch.nn.utils.parametrizations.spectral_norm`` the trainable
tensor is the parameter ``<module>.parametrizations.weight.original`` (averaged) and u/v are buffers (copied).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lrkit.statedict import state_diff

__all__ = ["ema_update", "make_ema"]


def make_ema(model: nn.Module) -> nn.Module:
    """An independent deep copy of ``model`` for averaging: eval mode, ``requires_grad`` off, no ``.grad``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"make_ema expects an nn.Module, got {type(model).__name__}")
    ema = copy.deepcopy(model)
    ema.eval()
    for p in ema.parameters():
        p.requires_grad_(False)
        p.grad = None  # deepcopy also copies gradients; an EMA net never has any
    return ema


def _check_same_structure(kind: str, ema_named: dict[str, torch.Tensor], model_named: dict[str, torch.Tensor]) -> None:
    diff = state_diff(model_named, ema_named)
    only_ema, only_model = sorted(diff.unexpected), sorted(diff.missing)
    shapes = sorted(f"{n}: ema {have} vs model {want}" for n, have, want in diff.shapes)
    if only_ema or only_model or shapes:
        parts = []
        if only_ema:
            parts.append(f"only in the EMA net: {only_ema}")
        if only_model:
            parts.append(f"only in the model: {only_model}")
        if shapes:
            parts.append(f"shape mismatch: {shapes}")
        raise ValueError(
            f"ema_update: the EMA net and the model differ in their {kind} ({'; '.join(parts)}); "
            "build the EMA copy with make_ema(model) from the same architecture"
        )


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """In place: ``p_ema = beta * p_ema + (1 - beta) * p`` for every floating parameter; buffers copied.

    ``beta`` in [0, 1] (1 freezes the EMA, 0 copies the model). Non-floating parameters (rare) are copied.
    Both nets must have the same parameter and buffer names and shapes (e.g. ``ema = make_ema(model)``).
    """
    if not isinstance(ema, nn.Module) or not isinstance(model, nn.Module):
        raise TypeError(
            f"ema_update expects two nn.Modules, got {type(ema).__name__} and {type(model).__name__}"
        )
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= float(beta) <= 1.0:
        raise ValueError(f"ema_update: beta must be a number in [0, 1] (e.g. 0.999), got {beta!r}")
    if ema is model:
        raise ValueError("ema_update: the EMA net is the model itself; make a separate copy with make_ema(model)")

    ema_params, model_params = dict(ema.named_parameters()), dict(model.named_parameters())
    ema_buffers, model_buffers = dict(ema.named_buffers()), dict(model.named_buffers())
    _check_same_structure("parameters", ema_params, model_params)
    _check_same_structure("buffers", ema_buffers, model_buffers)

    weight = 1.0 - float(beta)  # lerp(a, b, w) = a + w (b - a) = beta a + (1 - beta) b
    for name, p_ema in ema_params.items():
        p = model_params[name]
        if p_ema.is_floating_point():
            p_ema.lerp_(p.detach(), weight)
        else:
            p_ema.copy_(p)
    for name, b_ema in ema_buffers.items():
        b_ema.copy_(model_buffers[name])
