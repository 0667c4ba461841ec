"""Precision, recall, density and coverage (Naeem et al., ICML 2020, "prdc") on VGG16 fc2 features.

I2I-LR (Table 2) reports density and coverage "following [32]": real and generated images embedded with an
ImageNet-pretrained VGG16, the 4096 features of its second fully connected layer, k = 5 nearest neighbours.

Two layers:

* :func:`prdc_from_features` gives the numbers ``prdc.compute_prdc`` (the authors' package, v0.2) gives, for any
  feature arrays, while never holding a full N x M distance matrix: distances are computed in blocks of
  ``chunk_size`` vectors, so 10k-50k samples fit in a few hundred MB. One deliberate difference: with exactly
  duplicated feature vectors prdc's answer depends on BLAS rounding (it changes with scikit-learn's ``n_jobs``
  blocking); here copies are at distance exactly 0 and the answer is the exact-arithmetic one.
* :func:`prdc_vgg16` embeds two image sources with :func:`vgg16_fc2_features` and calls it.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.metrics.imagesource import ImageSource, iter_batches
from lrkit.weights import ResolvedWeights, resolve

__all__ = ["prdc_from_features", "prdc_vgg16", "vgg16_fc2_features", "load_vgg16"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_INPUT_SIZE = 224


# ----------------------------------------------------------------------------------------------------------------
# PRDC from features, in bounded memory
# ----------------------------------------------------------------------------------------------------------------

def _as_features(x, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{what}: expected a [N, D] feature array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what}: the feature array is empty (shape {a.shape})")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"{what}: features must be real numbers, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what}: features contain NaN or Inf; check the images / feature extractor")
    # scikit-learn (which prdc calls) computes in float32 only when both operands are float32, otherwise it
    # converts to float64; keep float32 arrays as they are and convert everything else once here.
    return a if a.dtype == np.float32 else a.astype(np.float64)


class _UniqueDistances:
    """Euclidean distances between the distinct vectors of two feature sets, computed block by block.

    Why not simply prdc's formula on blocks of rows: prdc (through scikit-learn) evaluates
    ``sqrt(max(|x|^2 + |y|^2 - 2 x.y, 0))`` with BLAS, whose rounding depends on the shapes of the matrix products.
    Two copies of one vector are then at a tiny nonzero distance (~1e-7), and two pairs that are equal in exact
    arithmetic (x to y, x to a copy of y) can get distances one ulp apart, so any comparison between such values
    is decided by rounding noise: prdc's own result changes with its ``n_jobs`` blocking on data with duplicates.
    Here every distinct vector (bitwise, -0.0 == 0.0) gets one id and every distance is a function of the pair of
    ids, always evaluated in the same block product and orientation: copies are at distance exactly 0, a pair and
    a copy of it get bit-identical distances, d(x, y) == d(y, x), so such exact ties are resolved the same way
    whatever ``chunk_size`` is. Elsewhere values agree with scikit-learn's to a few ulps, far below any gap that
    decides a comparison (for float32 they are rounded to the same float32 values), so the metrics equal prdc's.

    Ids are ordered real-only, shared, fake-only, so real vectors are ids [0, real_end) and fake ones
    [fake_start, n).
    """

    def __init__(self, real: np.ndarray, fake: np.ndarray, chunk: int):
        self.sets = (real, fake)
        self.chunk = chunk
        self.out_dtype = np.float32 if real.dtype == np.float32 and fake.dtype == np.float32 else np.float64
        first: dict[bytes, int] = {}  # key -> provisional id
        rep: list[tuple[int, int]] = []  # provisional id -> (set, row) of its first occurrence
        seen = [[], []]  # provisional ids present in each set
        ids = []
        for which, arr in enumerate(self.sets):
            out = np.empty(len(arr), dtype=np.int64)
            for i in range(len(arr)):
                row = arr[i].astype(np.float64) + 0.0  # +0.0 turns -0.0 into 0.0
                key = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
                pid = first.get(key)
                if pid is not None:
                    s, r = rep[pid]
                    if not np.array_equal(self.sets[s][r], arr[i]):  # a hash collision: never seen, but be exact
                        pid = None
                if pid is None:
                    pid = len(rep)
                    first[key] = pid
                    rep.append((which, i))
                out[i] = pid
            ids.append(out)
            seen[which] = out
        n = len(rep)
        in_real = np.zeros(n, dtype=bool)
        in_real[seen[0]] = True
        in_fake = np.zeros(n, dtype=bool)
        in_fake[seen[1]] = True
        order = np.concatenate([np.flatnonzero(in_real & ~in_fake), np.flatnonzero(in_real & in_fake),
                                np.flatnonzero(~in_real & in_fake)])
        new_id = np.empty(n, dtype=np.int64)
        new_id[order] = np.arange(n)
        self.n = n
        self.real_ids, self.fake_ids = new_id[ids[0]], new_id[ids[1]]
        self.real_end = int((in_real).sum())
        self.fake_start = int((in_real & ~in_fake).sum())
        self.rep_set = np.array([rep[p][0] for p in order], dtype=np.int64)
        self.rep_row = np.array([rep[p][1] for p in order], dtype=np.int64)
        self.norms = np.empty(n, dtype=np.float64)
        for b in range(self.n_blocks):
            x = self._gather(b)
            self.norms[self._span(b)] = np.einsum("ij,ij->i", x, x)

    @property
    def n_blocks(self) -> int:
        return -(-self.n // self.chunk)

    def _span(self, b: int) -> slice:
        return slice(b * self.chunk, min((b + 1) * self.chunk, self.n))

    def _gather(self, b: int) -> np.ndarray:
        """The vectors of id block ``b`` as a fresh float64 array [c, D]."""
        span = self._span(b)
        which, rows = self.rep_set[span], self.rep_row[span]
        out = np.empty((len(rows), self.sets[0].shape[1]), dtype=np.float64)
        for s in (0, 1):
            m = which == s
            out[m] = self.sets[s][rows[m]]
        return out

    def block(self, a: int, b: int) -> np.ndarray:
        """Distances between id blocks ``a`` (rows) and ``b`` (columns), in the output dtype."""
        if a > b:
            return self.block(b, a).T  # always evaluated in one orientation, so d(x, y) == d(y, x) exactly
        xa = self._gather(a)
        sa, sb = self._span(a), self._span(b)
        d2 = xa @ (xa if a == b else self._gather(b)).T  # [ca, cb] dot products x.y
        d2 *= -2.0  # in place, scikit-learn's order: -2 x.y + |x|^2 + |y|^2
        d2 += self.norms[sa, None]
        d2 += self.norms[None, sb]
        if a == b:
            d2 = np.triu(d2) + np.triu(d2, 1).T  # one triangle mirrored: symmetric bit for bit
            np.fill_diagonal(d2, 0.0)  # a vector and itself (and all its copies)
        d = d2.astype(self.out_dtype, copy=False)  # float32 inputs: round, as scikit-learn's upcast path does
        np.maximum(d, 0, out=d)
        return np.sqrt(d, out=d)

    def strip(self, a: int, lo: int, hi: int) -> tuple[np.ndarray, int]:
        """Distances from id block ``a`` to the id blocks covering ids [lo, hi) -> (array, id of its column 0)."""
        b0, b1 = lo // self.chunk, (hi - 1) // self.chunk
        col0 = b0 * self.chunk
        span = self._span(a)
        out = np.empty((span.stop - span.start, self._span(b1).stop - col0), dtype=self.out_dtype)
        for b in range(b0, b1 + 1):
            sb = self._span(b)
            out[:, sb.start - col0:sb.stop - col0] = self.block(a, b)
        return out, col0


def _kth_radii(u: _UniqueDistances, lo: int, hi: int, mult: np.ndarray, nearest_k: int) -> np.ndarray:
    """For every id in [lo, hi) (the ids of one set): the nearest_k-th smallest distance to that set's samples.

    ``mult[v]``: how many samples of the set are copies of id v. Every sample is a neighbour (copies included, at
    distance 0) and the vector itself is the 0-th, as in prdc, which takes the largest of the ``k + 1`` smallest
    distances of a row: the element of index k of the sorted row.
    """
    radii = np.zeros(u.n, dtype=u.out_dtype)
    reps = np.repeat(np.arange(hi - lo), mult[lo:hi]) if (mult[lo:hi] != 1).any() else None
    for a in range(lo // u.chunk, (hi - 1) // u.chunk + 1):
        span = u._span(a)
        r0, r1 = max(span.start, lo), min(span.stop, hi)
        d, col0 = u.strip(a, lo, hi)
        d = d[r0 - span.start:r1 - span.start, lo - col0:hi - col0]  # [rows, ids of the set]
        if reps is not None:
            d = d[:, reps]  # one column per sample: copies count as separate neighbours
        radii[r0:r1] = np.partition(d, nearest_k, axis=1)[:, nearest_k]
    return radii


def prdc_from_features(real_feats, fake_feats, nearest_k: int = 5, chunk_size: int | None = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake_feats`` [M, D] against ``real_feats`` [N, D].

    Definitions (Naeem et al. 2020, as ``prdc.compute_prdc``): ``r_i`` = Euclidean distance from real sample i to
    its ``nearest_k``-th nearest real neighbour (i itself counts as the 0-th, at distance 0; every other sample,
    copies included, is a neighbour); ``s_j`` likewise among fake samples; ``d_ij`` = distance(real i, fake j).
    Comparisons are strict (``<``).

    * precision = fraction of fake j with ``d_ij < r_i`` for some i;
    * recall = fraction of real i with ``d_ij < s_j`` for some j;
    * density = ``(1/k) * mean_j #{i : d_ij < r_i}``;
    * coverage = fraction of real i with ``min_j d_ij < r_i``.

    Distances use prdc's (scikit-learn's) formula ``sqrt(max(|x|^2 + |y|^2 - 2 x.y, 0))``, with float64
    arithmetic rounded to float32 when both arrays are float32 (as scikit-learn does), so the four numbers equal
    ``prdc.compute_prdc``'s. Where prdc's answer is decided by rounding noise, that is for exact duplicates and
    exactly equal distances between copies of vectors (see ``_UniqueDistances``), this function gives the
    exact-arithmetic answer: copies are at distance exactly 0 and ties are not "inside", for every ``chunk_size``.
    Mixed dtypes are both converted to float64 (prdc would keep the within-set distances of a float32 set in
    float32); give both sets one dtype to reproduce prdc exactly.

    Memory: blocks of ``chunk_size`` distinct vectors against one whole set, about ``3 * chunk_size * max(N, M) *
    8`` bytes, never N x M (``chunk_size=None``: one block). Needs ``N, M > nearest_k`` (prdc itself needs
    ``nearest_k + 2``). Returns ``{"precision", "recall", "density", "coverage"}`` as floats plus ``n_real``,
    ``n_fake``, ``nearest_k``.
    """
    if isinstance(nearest_k, bool) or not isinstance(nearest_k, (int, np.integer)) or nearest_k < 1:
        raise ValueError(f"nearest_k must be a positive integer, got {nearest_k!r}")
    nearest_k = int(nearest_k)
    real = _as_features(real_feats, "real features")
    fake = _as_features(fake_feats, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real features have {real.shape[1]} dimensions but fake features {fake.shape[1]}; embed "
                         "both sets with the same network")
    for name, arr in (("real", real), ("fake", fake)):
        if len(arr) <= nearest_k:
            raise ValueError(f"{name} set has {len(arr)} samples; the {nearest_k}-th nearest neighbour needs at "
                             f"least {nearest_k + 1}. Use more samples or a smaller nearest_k")
    if chunk_size is None:
        chunk_size = len(real) + len(fake)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    if real.dtype != fake.dtype:
        real, fake = real.astype(np.float64), fake.astype(np.float64)

    u = _UniqueDistances(real, fake, int(chunk_size))
    real_mult = np.bincount(u.real_ids, minlength=u.n)  # how many real samples are copies of each id
    fake_mult = np.bincount(u.fake_ids, minlength=u.n)
    real_radii = _kth_radii(u, 0, u.real_end, real_mult, nearest_k)  # r, indexed by id
    fake_radii = _kth_radii(u, u.fake_start, u.n, fake_mult, nearest_k)  # s, indexed by id
    fake_r = fake_radii[u.fake_start:]  # s of the fake ids, in column order

    # All three quantities depend on a sample only through its id, so they are computed over distinct ids and
    # expanded to samples at the end (a real id counts once per real copy in the density count).
    inside_count_id = np.zeros(u.n - u.fake_start, dtype=np.int64)  # per fake id: #{real samples i : d < r_i}
    in_fake_ball = np.zeros(u.n, dtype=bool)  # per real id: exists fake j with d < s_j
    covered = np.zeros(u.n, dtype=bool)  # per real id: min_j d < r_i
    real_dups = bool((real_mult[:u.real_end] != 1).any())
    for a in range(0, (u.real_end - 1) // u.chunk + 1):
        span = u._span(a)
        r1 = min(span.stop, u.real_end)
        d, col0 = u.strip(a, u.fake_start, u.n)
        d = d[:r1 - span.start, u.fake_start - col0:]  # [real ids of the block, fake ids]
        inside = d < real_radii[span.start:r1, None]
        if real_dups:
            inside_count_id += real_mult[span.start:r1] @ inside.astype(np.int64)
        else:
            inside_count_id += inside.sum(axis=0, dtype=np.int64)
        del inside
        in_fake_ball[span.start:r1] = (d < fake_r[None, :]).any(axis=1)
        covered[span.start:r1] = d.min(axis=1) < real_radii[span.start:r1]
    inside_count = inside_count_id[u.fake_ids - u.fake_start]  # per fake sample, [M]

    # Same reductions as prdc (bool/int arrays averaged in float64), per sample.
    precision = (inside_count > 0).mean()
    recall = in_fake_ball[u.real_ids].mean()
    density = (1.0 / float(nearest_k)) * inside_count.mean()
    coverage = covered[u.real_ids].mean()
    return {
        "precision": float(precision), "recall": float(recall), "density": float(density),
        "coverage": float(coverage), "n_real": len(real), "n_fake": len(fake), "nearest_k": nearest_k,
    }


# ----------------------------------------------------------------------------------------------------------------
# VGG16 fc2 features
# ----------------------------------------------------------------------------------------------------------------

def _warn_if_unverified(resolved: ResolvedWeights, metric: str) -> None:
    if resolved.verified is None:
        warnings.warn(f"{metric} computed with {resolved.label}: not the official weights, the values are not "
                      "comparable to published numbers", UserWarning, stacklevel=3)


@functools.lru_cache(maxsize=2)
def _cached_vgg16(path: str, sha256: str, device: str) -> torch.nn.Module:
    import torchvision

    # Built on the meta device (no random initialisation of 138M parameters), then the file's tensors assigned.
    with torch.device("meta"):
        model = torchvision.models.vgg16(weights=None, init_weights=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not a torchvision VGG16 state_dict (e.g. vgg16-397923af.pth): {exc}") from None
    return model.eval().requires_grad_(False).to(device)


def load_vgg16(weights: str | Path | None = None, device: str = "cpu") -> tuple[torch.nn.Module, ResolvedWeights]:
    """torchvision VGG16 (eval mode) with the file ``resolve("torchvision_vgg16", weights)`` names, and that record."""
    resolved = resolve("torchvision_vgg16", weights)
    return _cached_vgg16(str(resolved.path), resolved.sha256, str(device)), resolved


def _vgg16_fc2(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> [B, 4096] fc2 activations after its ReLU."""
    x = (x + 1.0) / 2.0  # [0, 1], the range torchvision's ImageNet normalisation expects
    if x.shape[-2:] != (VGG_INPUT_SIZE, VGG_INPUT_SIZE):
        x = F.interpolate(x, size=(VGG_INPUT_SIZE, VGG_INPUT_SIZE), mode="bilinear", align_corners=False,
                          antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    h = model.avgpool(model.features(x))  # [B, 512, 7, 7]
    h = torch.flatten(h, 1)  # [B, 25088]
    # classifier = [fc1, ReLU, Dropout, fc2, ReLU, Dropout, fc3]; [:5] stops after fc2's ReLU (dropout is off in
    # eval mode and is the identity anyway at index 2).
    return model.classifier[:5](h)


def vgg16_fc2_features(
    images: ImageSource, *, weights: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
) -> np.ndarray:
    """VGG16 fc2 features of an image source -> float32 numpy [N, 4096].

    Protocol: images in [-1, 1] mapped to [0, 1]; resized to 224 x 224 with bilinear interpolation
    (``F.interpolate(..., mode="bilinear", align_corners=False, antialias=True)``, i.e. area-aware when shrinking,
    like PIL's bilinear ``Resize`` in torchvision transforms; images already 224 x 224 are not touched); normalised
    with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); torchvision VGG16 in eval mode
    (dropout off); the output of ``classifier[4]``, the ReLU after fc2 (``classifier[3]``, 4096 -> 4096).

    Post-ReLU: Naeem et al. and I2I-LR only say "the 4096 features of the second fully connected layer" of VGG16
    (following Kynkaenniemi et al. 2019); neither the prdc README nor the papers state the activation. We take the
    layer's activation, the output of ``classifier[:-1]`` without its trailing dropout, which is what the usual
    PyTorch recipe (dropping the last Linear of ``vgg16.classifier``) returns in eval mode. The fc2 pre-activation
    would give different numbers; a table mixing the two is not comparable.
    """
    model, resolved = load_vgg16(weights, device)
    _warn_if_unverified(resolved, "vgg16_fc2_features")
    feats = []
    with torch.inference_mode():
        for batch in iter_batches(images, batch_size, "images"):
            feats.append(_vgg16_fc2(model, batch.to(device)).float().cpu())
    return torch.cat(feats).numpy()


def prdc_vgg16(
    real: ImageSource, fake: ImageSource, *, nearest_k: int = 5, weights: str | Path | None = None,
    batch_size: int = 32, device: str = "cpu", chunk_size: int | None = 1024,
) -> dict[str, float]:
    """Precision / recall / density / coverage of ``fake`` images against ``real`` images (I2I-LR Table 2).

    Features: :func:`vgg16_fc2_features` (ImageNet VGG16 via ``lrkit.weights.resolve("torchvision_vgg16",
    weights)``, 224 x 224 bilinear, ImageNet normalisation, fc2 after ReLU, 4096-d, float32). Metrics:
    :func:`prdc_from_features` with ``nearest_k`` (5, as in the prdc paper and I2I-LR), equal to
    ``prdc.compute_prdc`` on the same features. Higher is better for all four; density can exceed 1.
    """
    real_f = vgg16_fc2_features(real, weights=weights, batch_size=batch_size, device=device)
    fake_f = vgg16_fc2_features(fake, weights=weights, batch_size=batch_size, device=device)
    return prdc_from_features(real_f, fake_f, nearest_k=nearest_k, chunk_size=chunk_size)
