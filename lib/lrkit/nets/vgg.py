"""VGG-19 feature maps for perceptual losses (SR-NAM's degradation loss; the SR baselines of later papers).

torchvision's ImageNet VGG-19 (``lrkit weights``: ``torchvision_vgg19``, vgg19-dcbb9e9d.pth). Layers are named as
the SR literature names them: ``relu{block}_{index}`` (e.g. ``relu2_2``, ``relu5_4``) and ``conv{block}_{index}``
for the pre-activation outputs (ESRGAN's ``conv5_4``). Inputs are images in [-1, 1], mapped to [0, 1] and
normalised with the ImageNet mean and std, at whatever size they come (the network is fully convolutional up to
the layers used here). The weights are frozen; gradients flow to the input.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from lrkit.weights import ResolvedWeights, resolve

__all__ = ["VGG19Features", "load_vgg19_features", "VGG19_LAYERS", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# torchvision vgg19().features: the convolutions per block (each followed by a ReLU), a max pool after each block.
_BLOCKS = (2, 2, 4, 4, 4)


def _layer_names() -> dict[str, int]:
    """Layer name -> index in ``torchvision.models.vgg19().features`` (output of that module)."""
    names, i = {}, 0
    for b, n in enumerate(_BLOCKS, start=1):
        for j in range(1, n + 1):
            names[f"conv{b}_{j}"] = i
            names[f"relu{b}_{j}"] = i + 1
            i += 2
        names[f"pool{b}"] = i
        i += 1
    return names


VGG19_LAYERS = _layer_names()


class VGG19Features(nn.Module):
    """``forward(x [B, 3, H, W] in [-1, 1]) -> [feature map of each layer in ``layers``]`` (in that order)."""

    def __init__(self, features: nn.Sequential, layers: tuple[str, ...]) -> None:
        super().__init__()
        bad = [n for n in layers if n not in VGG19_LAYERS]
        if bad or not layers:
            raise ValueError(f"unknown VGG-19 layer(s) {bad or '(none given)'}; known: {', '.join(VGG19_LAYERS)}")
        self.layers = tuple(layers)
        self._index = [VGG19_LAYERS[n] for n in self.layers]
        self.features = features[: max(self._index) + 1]  # nothing past the deepest layer asked for
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # frozen: always in eval mode
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((x + 1.0) / 2.0 - self.mean) / self.std
        out, want = [], set(self._index)
        by_index = {}
        for i, module in enumerate(self.features):
            h = module(h)
            if i in want:
                by_index[i] = h
        for i in self._index:
            out.append(by_index[i])
        return out


@functools.lru_cache(maxsize=4)
def _features_from_file(path: str, sha256: str) -> nn.Sequential:
    import torchvision

    model = torchvision.models.vgg19(weights=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not a torchvision VGG-19 state_dict (e.g. vgg19-dcbb9e9d.pth): {exc}") from None
    return model.features.eval().requires_grad_(False)


def load_vgg19_features(layers: tuple[str, ...], weights: str | None = None,
                        device: str = "cpu") -> tuple[VGG19Features, ResolvedWeights]:
    """The frozen VGG-19 feature extractor for ``layers`` and the weights record; raises
    ``lrkit.weights.WeightsUnavailable`` (one line with the fix) when the ImageNet file is not here."""
    resolved = resolve("torchvision_vgg19", weights)
    import copy

    features = copy.deepcopy(_features_from_file(str(resolved.path), resolved.sha256))
    return VGG19Features(features, tuple(layers)).to(device), resolved
