"""One registry of metrics: a name fixes the whole protocol (features, preprocessing, weights, aggregation).

``compute(name, real=..., fake=...)`` returns ``dict[str, float]``; ``evaluate(names, ...)`` runs several, marks a
metric whose weights are missing as *unavailable* (with the message that says how to get them) instead of
failing the batch or substituting anything, and appends one JSON line per metric to a results file.

Roles: every metric reads at most two image sources. ``real`` is the reference side (real set, ground truth,
source images or LR targets, see ``MetricSpec.real_is``), ``fake`` the generated side. Pairwise metrics pair by index (folders:
by file name).
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from lrkit import weights as W
from lrkit.fsutil import append_jsonl
from lrkit.metrics import (
    efficientnet_fd, fid, identity_dlib, image_quality, landmarks, landmarks_fan, lpips_metrics, lr_consistency,
    prdc_metrics,
)


def prdc_efflite0(real, fake, *, nearest_k: int = 5, batch_size: int = 50, device: str = "cpu", weights=None,
                  chunk_size: int = 1024) -> dict[str, float]:
    """Precision/recall/density/coverage (chunked, equal to ``prdc.compute_prdc``) on EfficientNet-Lite0 pooled
    features (1280-d; preprocessing as ``fd_efficientnet_lite0``): the offline stand-in for ``prdc_vgg16``."""
    rf = efficientnet_fd.prdc_efflite0_features(real, batch_size=batch_size, device=device, weights=weights)
    ff = efficientnet_fd.prdc_efflite0_features(fake, batch_size=batch_size, device=device, weights=weights)
    return prdc_metrics.prdc_from_features(rf, ff, nearest_k=nearest_k, chunk_size=chunk_size)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[..., dict]
    inputs: str  # "sets": fn(real, fake); "pairs": fn(fake, real) paired by index; "groups": fn(fake)
    real_is: str  # what `real` means for this metric (shown by `lrkit metric --help`)
    weights: tuple[str, ...]  # weight files (lrkit.weights names); the first takes a user override
    headline: str  # the headline key and its direction, e.g. "fid_pytorchfid:lower"
    summary: str

    def call(self, real, fake, **kwargs) -> dict:
        if self.inputs == "groups":
            return self.fn(fake, **kwargs)
        if self.inputs == "sets":
            return self.fn(real, fake, **kwargs)
        return self.fn(fake, real, **kwargs)


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("fid_pytorchfid", fid.fid_pytorchfid, "sets", "real set", ("pytorchfid_inception",),
                   "fid_pytorchfid:lower", "FID, pytorch-fid protocol (TF-Inception pool3, 2048-d)"),
        MetricSpec("fid_starganv2", fid.fid_starganv2, "sets", "real set", ("torchvision_inception_v3",),
                   "fid_starganv2:lower",
                   "FID, StarGAN v2 protocol (torchvision Inception-v3, resize 256 then 299, ImageNet mean/std)"),
        MetricSpec("lpips", lpips_metrics.lpips_pairwise, "pairs", "ground truth", ("torchvision_alexnet",),
                   "lpips:lower", "LPIPS v0.1 AlexNet distance to ground truth, mean over pairs"),
        MetricSpec("lpips_diversity", lpips_metrics.lpips_diversity, "groups", "-",
                   ("torchvision_alexnet",), "lpips_diversity:higher",
                   "StarGAN v2 diversity: mean LPIPS over the 45 pairs of 10 outputs per source"),
        MetricSpec("prdc_vgg16", prdc_metrics.prdc_vgg16, "sets", "real set", ("torchvision_vgg16",),
                   "coverage:higher", "precision/recall/density/coverage, k=5, VGG16 fc2 (4096-d) features"),
        MetricSpec("psnr", image_quality.psnr, "pairs", "ground truth", (), "psnr:higher",
                   "PSNR on 8-bit RGB, data range 255, mean over images"),
        MetricSpec("ssim", image_quality.ssim, "pairs", "ground truth", (), "ssim:higher",
                   "SSIM on 8-bit RGB, Gaussian 11x11 window sigma 1.5, mean over images"),
        MetricSpec("lr_consistency", lr_consistency.lr_consistency, "pairs", "LR targets", (),
                   "lr_error_mean:lower", "mean |DS(output) - LR target| in 8-bit grey levels, fraction within eps"),
        MetricSpec("identity_dlib", identity_dlib.identity_dlib, "pairs", "sources",
                   ("dlib_face_recognition", "dlib_shape_predictor_68"), "identity_dist_source:lower",
                   "dlib 128-d face descriptor distance output-source, detector failure rate"),
        MetricSpec("landmark_heatmap", landmarks.landmark_heatmap, "pairs", "references",
                   ("dlib_shape_predictor_68",), "landmark_heatmap:lower",
                   "SR-NAM eq. 7 on dlib 68-landmark Gaussian heatmaps (64x64, sigma 2)"),
        MetricSpec("landmark_heatmap_fan", landmarks_fan.landmark_heatmap_fan, "pairs", "references",
                   ("stargan2_wing",), "landmark_heatmap_fan:lower",
                   "SR-NAM eq. 7 on the 98 heatmaps (64x64) of StarGAN v2's FAN, images resized to 256"),
        MetricSpec("fd_efficientnet_lite0", efficientnet_fd.fd_efficientnet_lite0, "sets", "real set",
                   ("efficientnet_lite0",), "fd_efficientnet_lite0:lower",
                   "Frechet distance on EfficientNet-Lite0 ImageNet features (offline stand-in, not FID)"),
        MetricSpec("prdc_efflite0", prdc_efflite0, "sets", "real set", ("efficientnet_lite0",),
                   "coverage:higher", "precision/recall/density/coverage, k=5, EfficientNet-Lite0 features"),
    )
}


def get_metric(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except KeyError:
        from lrkit.errors import UnknownName

        raise UnknownName(f"unknown metric {name!r}; known: {', '.join(METRICS)}, synthfaces_factors") from None


def resolve_weights(spec: MetricSpec, override=None) -> list[W.ResolvedWeights]:
    """Every weight file the metric needs; raises WeightsUnavailable (with the fix) if one is missing."""
    return [W.resolve(w, override if i == 0 else None) for i, w in enumerate(spec.weights)]


def compute(name: str, *, real=None, fake=None, weights=None, **kwargs) -> dict[str, float]:
    """Run one metric. ``weights`` overrides its first weight file (accepted; labelled unverified if not official)."""
    spec = get_metric(name)
    if fake is None or (spec.inputs != "groups" and real is None):
        need = "'fake'" + (f" and 'real' ({spec.real_is})" if spec.inputs != "groups" else "")
        raise ValueError(f"metric {name} needs {need}")
    resolve_weights(spec, weights)  # fail early and clearly when a file is missing
    if weights is not None:
        kwargs["weights"] = weights
    accepted = inspect.signature(spec.fn).parameters
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ValueError(f"metric {name} does not take option(s) {unknown}")
    out = spec.call(real, fake, **kwargs)
    return {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in out.items()}


def evaluate(names: list[str], *, real=None, fake=None, weights: dict[str, str] | None = None,
             results_file: str | Path | None = None, context: dict | None = None, **kwargs) -> list[dict]:
    """Run several metrics on the same inputs; unavailable ones are recorded as such, never replaced.

    Each record: ``metric``, ``status`` ("ok" | "unavailable"), ``values``, ``weights`` (labels of the files
    used), ``weights_files`` (name, path, sha256, verified of each), ``reason`` (why unavailable), ``time`` and the caller's ``context`` (run id, dataset, ...). With
    ``results_file`` each record is appended as one JSON line.
    """
    records = []
    for name in names:
        spec = get_metric(name)
        override = (weights or {}).get(name)
        rec = {"metric": name, "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               **(context or {})}
        try:
            resolved = resolve_weights(spec, override)
        except (W.WeightsUnavailable, W.WeightsChecksumError) as exc:
            rec.update(status="unavailable", values={}, weights=[], weights_files=[], reason=str(exc))
        else:
            opts = {k: v for k, v in kwargs.get(name, {}).items()}
            rec.update(status="ok", values=compute(name, real=real, fake=fake, weights=override, **opts),
                       weights=[r.label for r in resolved], reason="",
                       weights_files=[{"name": r.name, "path": str(r.path), "sha256": r.sha256,
                                       "verified": bool(r.verified)} for r in resolved])
        if results_file:
            append_jsonl(results_file, rec)
        records.append(rec)
    return records


def headline_of(name: str) -> tuple[str, str]:
    key, direction = get_metric(name).headline.split(":")
    return key, direction


def results_table(records: list[dict], keys: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per metric value; an unavailable metric shows the string 'unavailable' (never a number)."""
    rows = []
    for rec in records:
        want = (keys or {}).get(rec["metric"])
        if rec["status"] != "ok":
            for k in want or [headline_of(rec["metric"])[0]]:
                rows.append({"metric": rec["metric"], "key": k, "value": "unavailable",
                             "weights": "missing: see lrkit weights status"})
            continue
        for k, v in rec["values"].items():
            if want is None or k in want:
                rows.append({"metric": rec["metric"], "key": k,
                             "value": v if not (isinstance(v, float) and math.isnan(v)) else float("nan"),
                             "weights": "; ".join(rec["weights"]) or "none needed"})
    return pd.DataFrame(rows, columns=["metric", "key", "value", "weights"])
