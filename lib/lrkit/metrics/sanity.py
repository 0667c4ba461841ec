"""Metric sanity checks on synthfaces: real vs real, and real vs degraded at growing strengths.

A metric that does not grow monotonically as an image set is blurred or noised more is not measuring what the
tables claim; the metrics_sanity notebook runs these checks on every profile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lrkit.data.degrade import degrade
from lrkit.data.ops import make_lr
from lrkit.metrics import registry

# Direction in which each headline value should move as degradation grows.
WORSE_IS = {"higher": "down", "lower": "up"}


def degradation_sweep(images: torch.Tensor, metrics: list[str], strengths: dict[str, list[float]], *,
                      reference_set: torch.Tensor | None = None, lr_size: int = 8, seed: int = 0,
                      options: dict[str, dict] | None = None) -> pd.DataFrame:
    """Degrade ``images`` [N, 3, H, W] with each kind at each strength and score every metric.

    Pairwise metrics compare the degraded images with the clean ones; ``lr_consistency`` compares them with the
    clean images' LR versions (``lr_size``); set metrics compare the degraded set with ``reference_set`` (another
    real set, e.g. the val split) so strength 0 gives the real-vs-real baseline. Returns one row per
    (kind, strength, metric): the headline key, its value (NaN and ``status`` "unavailable" when weights are
    missing) and the direction that means "worse".
    """
    lr_clean = make_lr(images, lr_size)
    rows = []
    for kind, levels in strengths.items():
        for strength in levels:
            x = degrade(images, kind, float(strength), seed=seed)
            for name in metrics:
                spec = registry.get_metric(name)
                real = {"sets": reference_set if reference_set is not None else images,
                        "pairs": lr_clean if name == "lr_consistency" else images}.get(spec.inputs)
                rec = registry.evaluate([name], real=real, fake=x, **{name: (options or {}).get(name, {})})[0]
                key, direction = registry.headline_of(name)
                value = rec["values"].get(key, np.nan) if rec["status"] == "ok" else np.nan
                rows.append({"kind": kind, "strength": float(strength), "metric": name, "key": key,
                             "value": float(value), "worse_is": WORSE_IS[direction], "status": rec["status"],
                             "weights": "; ".join(rec["weights"])})
    return pd.DataFrame(rows)


def monotonicity(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per (metric, kind): does the value move strictly in the 'worse' direction at every step?"""
    rows = []
    for (metric, kind), g in sweep.groupby(["metric", "kind"], sort=False):
        g = g.sort_values("strength")
        if (g["status"] != "ok").any():
            rows.append({"metric": metric, "kind": kind, "monotonic": "unavailable", "values": ""})
            continue
        v = g["value"].to_numpy()
        steps = np.diff(v)
        ok = bool(np.all(steps > 0)) if g["worse_is"].iloc[0] == "up" else bool(np.all(steps < 0))
        rows.append({"metric": metric, "kind": kind, "monotonic": "yes" if ok else "NO",
                     "values": " -> ".join(f"{x:.4g}" for x in v)})
    return pd.DataFrame(rows).set_index(["metric", "kind"])


def sweep_figure(sweep: pd.DataFrame, title: str = ""):
    """One panel per metric: value against degradation strength, one line per kind."""
    import matplotlib.pyplot as plt

    ok = sweep[sweep["status"] == "ok"]
    metrics = list(dict.fromkeys(ok["metric"]))
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(3.0 * max(len(metrics), 1), 2.6), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        for kind, g in ok[ok["metric"] == name].groupby("kind"):
            g = g.sort_values("strength")
            ax.plot(g["strength"], g["value"], marker="o", label=kind)
        ax.set_title(f"{name}\n({ok[ok.metric == name]['key'].iloc[0]})", fontsize=8)
        ax.set_xlabel("strength (blur: px sigma, noise: grey levels)", fontsize=6)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def factor_baselines(synthset, probes, shift: int = 1, device: str = "cpu") -> pd.DataFrame:
    """Score three reference "translations" of source ``i`` towards target ``i`` (= image ``i + shift``).

    * ``copy source``: output = the source (identity kept, LR target ignored);
    * ``copy target``: output = the target's real HR image (LR followed, identity lost);
    * ``ideal``: synthfaces re-rendered with the target's coarse (and nuisance) factors and the source's fine
      factors: exactly what a perfect I2I-LR translation would produce.

    A trustworthy ``synthfaces_factors`` scores ``ideal`` high on both identity and faithfulness, and each copy
    high on one only. Returns one row per baseline with the summary keys.
    """
    from lrkit.data import synthfaces
    from lrkit.data.ops import from_uint8
    from lrkit.metrics.factor_probes import synthfaces_factors

    n = len(synthset.images)
    tgt = (np.arange(n) + shift) % n
    src_f = synthset.factors
    tgt_f = {k: np.asarray(v)[tgt] for k, v in src_f.items()}
    fine = {s.name for s in synthfaces.FACTORS[synthset.variant] if s.group == "fine"}
    ideal = np.stack([
        synthfaces.render({k: (src_f[k][i] if k in fine else tgt_f[k][i]).item() for k in src_f},
                          synthset.size, synthset.variant)
        for i in range(n)
    ])
    outputs = {"copy source": synthset.images, "copy target": synthset.images[tgt], "ideal": ideal}
    keys = ["identity_fine_agreement", "identity_fine_agreement_target", "faithful_coarse_agreement",
            "faithful_coarse_mae", "chance_fine", "probe_min_fine_accuracy"]
    rows = []
    for name, imgs in outputs.items():
        res = synthfaces_factors(from_uint8(imgs), src_f, tgt_f, variant=synthset.variant, probes=probes,
                                 device=device)
        rows.append({"output": name, **{k: res.get(k, np.nan) for k in keys}})
    return pd.DataFrame(rows).set_index("output")
