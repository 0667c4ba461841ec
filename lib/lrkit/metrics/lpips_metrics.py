"""LPIPS (Zhang et al. 2018) with the ``lpips`` package: pairwise distance to ground truth, and StarGAN v2 diversity.

The network is exactly ``lpips.LPIPS(net="alex", version="0.1")``: the package's ``ScalingLayer`` (inputs in
[-1, 1], shift (-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450)), the five ReLU outputs of torchvision's
AlexNet ``features``, each unit-normalised over channels (``lpips.normalize_tensor``: x / (||x|| + 1e-10)), the
squared difference weighted by the package's linear heads ``weights/v0.1/alex.pth`` (shipped inside the pip
package), averaged over space and summed over the five layers. Eval mode (the heads' dropout is off).

Only the AlexNet backbone weights come from elsewhere: torchvision's ImageNet file ``alexnet-owt-7be5be79.pth``,
resolved by ``lrkit.weights.resolve("torchvision_alexnet", weights)``. The model is built with ``pnet_rand=True``
(so torchvision never tries to download anything) and that file's ``features.*`` tensors are then copied into the
package's backbone slices (``features.{i}.*`` -> ``net.slice{s}.{i}.*``); the result is the same module
``lpips.LPIPS(net="alex")`` builds when torchvision has the file in its cache.

Inputs are used as given (float images in [-1, 1], LPIPS's expected range; nothing is clamped or quantized), and
must be at least 31 x 31 px (AlexNet's third block needs it).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from lrkit.metrics.image_quality import _check_folder_pairing, iter_paired_batches
from lrkit.metrics.imagesource import ImageSource, list_images, load_image_tensor
from lrkit.weights import ResolvedWeights, resolve

__all__ = [
    "load_lpips",
    "lpips_distances",
    "lpips_pairwise",
    "lpips_diversity",
    "lpips_diversity_tasks",
    "STARGAN_V2_SOURCE_BATCH",
    "STARGAN_V2_OUTPUTS_PER_SOURCE",
]

STARGAN_V2_SOURCE_BATCH = 32  # StarGAN v2's --val_batch_size: sources per batch in its LPIPS evaluation
STARGAN_V2_OUTPUTS_PER_SOURCE = 10  # its --num_outs_per_domain: outputs generated per source (45 pairs)
MIN_SIZE = 31  # smallest side AlexNet's five LPIPS layers accept (conv1 -> pool -> conv2 -> pool must stay >= 1)

# What a diversity evaluation reads: outputs [S, K, 3, H, W]; K tensors [S, 3, H, W]; an iterable of
# [B, K, 3, H, W] chunks; or a folder with one sub-folder per output index, holding the same file names.
DiversityOutputs = torch.Tensor | Sequence[torch.Tensor] | Iterable[torch.Tensor] | str | Path


def _warn_if_unverified(resolved: ResolvedWeights, metric: str) -> None:
    if resolved.verified is None:
        warnings.warn(f"{metric} computed with {resolved.label}: not the official weights, the values are not "
                      "comparable to published numbers", UserWarning, stacklevel=3)


def _heads_path() -> Path:
    import lpips

    path = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    if not path.is_file():
        raise FileNotFoundError(f"the lpips package's linear heads {path} are missing; reinstall it "
                                "(pip install --force-reinstall lpips==0.1.4)")
    return path


@functools.lru_cache(maxsize=2)
def _cached_lpips(path: str, sha256: str, device: str) -> torch.nn.Module:
    import lpips

    _heads_path()  # a clear error if the package lost its heads (LPIPS would fail with a bare torch.load error)
    with warnings.catch_warnings():
        # lpips calls torchvision's deprecated alexnet(pretrained=False); nothing is downloaded with pnet_rand=True.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=True, net="alex", version="0.1", lpips=True, spatial=False, pnet_rand=True,
                            pnet_tune=False, eval_mode=True, verbose=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    target = model.net.state_dict()  # keys "slice{s}.{i}.{weight,bias}", i = index in torchvision's features
    mapped = {}
    for key in target:
        _, idx, param = key.split(".")
        src = f"features.{idx}.{param}"
        if src not in state or tuple(state[src].shape) != tuple(target[key].shape):
            raise ValueError(f"{path} is not a torchvision AlexNet state_dict (alexnet-owt-7be5be79.pth): "
                             f"{src} is missing or has the wrong shape")
        mapped[key] = state[src]
    model.net.load_state_dict(mapped, strict=True)
    return model.eval().requires_grad_(False).to(device)


def load_lpips(weights: str | Path | None = None, device: str = "cpu") -> tuple[torch.nn.Module, ResolvedWeights]:
    """``lpips.LPIPS(net="alex", version="0.1")`` (eval mode) with AlexNet weights from ``lrkit.weights``."""
    resolved = resolve("torchvision_alexnet", weights)
    return _cached_lpips(str(resolved.path), resolved.sha256, str(device)), resolved


def _features(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """[B, 3, H, W] in [-1, 1] -> the five channel-normalised AlexNet feature maps [B, C_l, h_l, w_l].

    The same operations, in the same order, as ``LPIPS.forward`` applies to each input.
    """
    import lpips

    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"LPIPS (AlexNet) needs images of at least {MIN_SIZE}x{MIN_SIZE} px, got "
                         f"{tuple(x.shape[-2:])}")
    return [lpips.normalize_tensor(o) for o in model.net.forward(model.scaling_layer(x))]


def _distance(model: torch.nn.Module, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS between two lists of normalised features (same batch size) -> [B]; ``LPIPS.forward``'s head part."""
    spatial_average = importlib.import_module("lpips.lpips").spatial_average
    val = 0
    for kk in range(model.L):
        val += spatial_average(model.lins[kk]((fa[kk] - fb[kk]) ** 2), keepdim=True)  # [B, 1, 1, 1]
    return val.flatten()


def _check_finite(x: torch.Tensor, what: str) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: images contain NaN or Inf values; check the generator's output")


# ----------------------------------------------------------------------------------------------------------------
# Pairwise LPIPS (distance to ground truth)
# ----------------------------------------------------------------------------------------------------------------

def lpips_distances(
    a: ImageSource, b: ImageSource, *, weights: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
) -> torch.Tensor:
    """LPIPS of every pair ``(a[i], b[i])`` -> float64 tensor [N] (pairs by index; two folders: by file name)."""
    model, resolved = load_lpips(weights, device)
    _warn_if_unverified(resolved, "LPIPS")
    out = []
    with torch.inference_mode():
        for xa, xb in iter_paired_batches(a, b, batch_size, ("images a", "images b")):
            fa, fb = _features(model, xa.to(device)), _features(model, xb.to(device))
            out.append(_distance(model, fa, fb).double().cpu())
    return torch.cat(out)


def lpips_pairwise(
    a: ImageSource, b: ImageSource, *, weights: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
) -> dict[str, float]:
    """Mean LPIPS between paired images, e.g. SR outputs and their ground truth (DivSR Table 1; lower is better).

    Protocol: the module docstring (LPIPS v0.1, AlexNet, package heads), one distance per pair ``(a[i], b[i])``
    (tensors/iterables by index, two folders by relative path without extension), averaged over pairs.
    Returns ``{"lpips": mean, "lpips_std": population std over pairs (ddof=0), "n_pairs": N}``.
    """
    d = lpips_distances(a, b, weights=weights, batch_size=batch_size, device=device)
    return {"lpips": float(d.mean()), "lpips_std": float(d.std(unbiased=False)), "n_pairs": len(d)}


# ----------------------------------------------------------------------------------------------------------------
# Diversity (StarGAN v2 protocol)
# ----------------------------------------------------------------------------------------------------------------

def _iter_output_chunks(outputs: DiversityOutputs, chunk: int) -> Iterator[torch.Tensor]:
    """Yield [B, K, 3, H, W] chunks of consecutive sources from any accepted form of ``outputs``."""
    if isinstance(outputs, (str, Path)):
        root = Path(outputs)
        if not root.is_dir():
            raise FileNotFoundError(f"outputs folder {root} does not exist")
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(subdirs) < 2:
            raise ValueError(f"{root}: expected one sub-folder per output index (at least 2, e.g. 00/ .. 09/), each "
                             f"holding one image per source with the same file names; found {len(subdirs)}")
        for d in subdirs[1:]:
            _check_folder_pairing(subdirs[0], d, (f"outputs {subdirs[0].name}/", f"outputs {d.name}/"))
        files = [list_images(d) for d in subdirs]  # same names, same order (checked)
        for i in range(0, len(files[0]), chunk):
            yield torch.stack([torch.stack([load_image_tensor(p) for p in f[i:i + chunk]]) for f in files], dim=1)
        return
    if isinstance(outputs, torch.Tensor):
        if outputs.ndim != 5:
            raise ValueError(f"outputs: expected [S, K, 3, H, W] (K outputs per source), got {tuple(outputs.shape)}")
        for i in range(0, len(outputs), chunk):
            yield outputs[i:i + chunk]
        return
    if isinstance(outputs, (list, tuple)) and outputs and all(
            isinstance(t, torch.Tensor) and t.ndim == 4 for t in outputs):
        # StarGAN v2's own form: a list of K tensors [S, 3, H, W], element k = the k-th output of every source.
        shapes = {tuple(t.shape) for t in outputs}
        if len(shapes) > 1:
            raise ValueError(f"outputs: the K output tensors have different shapes {sorted(shapes)}")
        stacked = torch.stack(list(outputs), dim=1)  # [S, K, 3, H, W]
        yield from _iter_output_chunks(stacked, chunk)
        return
    for t in outputs:
        if not isinstance(t, torch.Tensor) or t.ndim != 5:
            raise ValueError("outputs: an iterable must yield [B, K, 3, H, W] tensors (K outputs per source), got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
        for i in range(0, len(t), chunk):
            yield t[i:i + chunk]


def _per_source_pair_distances(outputs: DiversityOutputs, model: torch.nn.Module, batch_size: int,
                               device: str) -> torch.Tensor:
    """LPIPS of every unordered pair of outputs of every source -> float64 [S, K(K-1)/2], pairs (0,1), (0,2), ..."""
    rows = []
    shape = None
    with torch.inference_mode():
        for x in _iter_output_chunks(outputs, batch_size):
            b, k = x.shape[:2]
            if x.shape[2] != 3:
                raise ValueError(f"outputs: expected RGB images [.., K, 3, H, W], got {tuple(x.shape)}")
            if shape is None:
                shape = tuple(x.shape[1:])
                if k < 2:
                    raise ValueError(f"outputs: diversity needs at least 2 outputs per source, got K={k}")
            elif tuple(x.shape[1:]) != shape:
                raise ValueError(f"outputs: the number of outputs per source or the image size changed from "
                                 f"{shape} to {tuple(x.shape[1:])}")
            _check_finite(x, "outputs")
            # Features of all B*K images once; each of the K(K-1)/2 pairs then only runs the linear heads.
            feats = [f.view(b, k, *f.shape[1:]) for f in _features(model, x.reshape(b * k, *x.shape[2:]).to(device))]
            pairs = [_distance(model, [f[:, i] for f in feats], [f[:, j] for f in feats])
                     for i, j in itertools.combinations(range(k), 2)]  # each [B]
            rows.append(torch.stack(pairs, dim=1).double().cpu())  # [B, P]
    if not rows:
        raise ValueError("outputs: no sources (the set is empty)")
    return torch.cat(rows)


def lpips_diversity(
    outputs: DiversityOutputs, *, source_batch_size: int | None = STARGAN_V2_SOURCE_BATCH,
    weights: str | Path | None = None, batch_size: int = 8, device: str = "cpu",
) -> dict[str, float]:
    """Diversity of multiple outputs per source: StarGAN v2's LPIPS protocol (I2I-LR Tables 1, 3, 4; higher = more
    diverse).

    ``outputs``: for each of S sources (source image + LR target, or LR input) its K generated outputs, as a
    tensor [S, K, 3, H, W] in [-1, 1]; or a list of K tensors [S, 3, H, W] (StarGAN v2's ``group_of_images``); or
    an iterable of [B, K, 3, H, W] chunks (streamed); or a folder with one sub-folder per output index
    (``00/ .. 09/``), each holding one image per source under the same file names.

    StarGAN v2 (``metrics/eval.py`` + ``metrics/lpips.py``, ``calculate_lpips_given_images``) aggregates like this:
    sources come in batches of ``val_batch_size = 32``; for each batch it generates K = 10 outputs per source
    (``num_outs_per_domain``) and, for each of the 45 unordered pairs (i < j) of output indices, takes
    ``LPIPS(outputs_i, outputs_j)`` of the whole batch: the mean over the batch of the per-image distances; the
    batch's value is the mean over the 45 pairs; the task's value is the plain mean of the batch values (a last,
    smaller batch weighs as much as a full one); the reported "mean" averages the tasks (``lpips_diversity_tasks``).

    Here: per source and pair, the LPIPS of the module docstring; consecutive sources grouped into batches of
    ``source_batch_size`` (default 32, StarGAN v2's; the last may be smaller; ``None``: every source weighs the
    same); a batch's value = mean over its sources and pairs (equal to StarGAN v2's mean of batch means, since the
    table is rectangular); the result = mean of the batch values. ``batch_size`` only sets how many sources go
    through AlexNet at once. Differences from StarGAN v2's code, all below 1e-6 in practice: it uses its own copy of
    the LPIPS heads and ``x * rsqrt(sum x^2 + 1e-10)`` as the normalisation, and averages in float32 (here float64).

    Returns ``{"lpips_diversity": value, "n_sources": S, "n_outputs": K, "n_source_batches": ...}``. The
    protocol's K is 10; another K is allowed and reported in ``n_outputs``.
    """
    if source_batch_size is not None and (isinstance(source_batch_size, bool) or source_batch_size < 1):
        raise ValueError(f"source_batch_size must be a positive integer or None, got {source_batch_size!r}")
    model, resolved = load_lpips(weights, device)
    _warn_if_unverified(resolved, "LPIPS diversity")
    d = _per_source_pair_distances(outputs, model, batch_size, device)  # [S, P]
    s, p = d.shape
    k = int(round((1 + (1 + 8 * p) ** 0.5) / 2))  # P = K(K-1)/2
    if source_batch_size is None:
        batch_values = [float(d.mean())]  # one group: every source weighs the same
    else:
        g = int(source_batch_size)
        batch_values = [float(d[i:i + g].mean()) for i in range(0, s, g)]  # consecutive sources, last one smaller
    return {"lpips_diversity": float(np.mean(batch_values)), "n_sources": s, "n_outputs": k,
            "n_source_batches": len(batch_values)}


def lpips_diversity_tasks(
    tasks: Mapping[str, DiversityOutputs], *, source_batch_size: int | None = STARGAN_V2_SOURCE_BATCH,
    weights: str | Path | None = None, batch_size: int = 8, device: str = "cpu",
) -> dict[str, float]:
    """:func:`lpips_diversity` per task (e.g. StarGAN v2's ``female2male``, ``male2female``), and their mean.

    StarGAN v2 reports ``LPIPS_<mode>/<task>`` per translation task and ``LPIPS_<mode>/mean``, the unweighted mean
    over tasks. Returns ``{"lpips_diversity/<task>": value for each task, "lpips_diversity": mean over tasks,
    "n_tasks": T}``.
    """
    if not tasks:
        raise ValueError("tasks is empty: give at least one task name -> outputs")
    out: dict[str, float] = {}
    for name, outputs in tasks.items():
        out[f"lpips_diversity/{name}"] = lpips_diversity(
            outputs, source_batch_size=source_batch_size, weights=weights, batch_size=batch_size, device=device,
        )["lpips_diversity"]
    values = [out[f"lpips_diversity/{n}"] for n in tasks]
    out["lpips_diversity"] = float(sum(v / len(values) for v in values))  # StarGAN v2 sums value / n_tasks
    out["n_tasks"] = len(values)
    return out
