"""Figures the notebooks share: HR/LR grids, factor distributions, and an ipywidgets explorer.

Plotting lives here (not in notebooks) so every notebook draws the same way and the code is tested.
Images come in as uint8 arrays [N, H, W, 3] or float tensors [N, 3, H, W] in [-1, 1].
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from lrkit.data.ops import downscale, from_uint8, to_uint8
from lrkit.runs.context import BATCH_ENV


def _as_tensor(images) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images.float()
    return from_uint8(np.asarray(images))


def lr_versions(images, lr_sizes, mode: str = "avgpool") -> dict[int, np.ndarray]:
    """uint8 [N, s, s, 3] per LR size s: DS(x) quantized to 8 bits, as a model would receive it."""
    x = _as_tensor(images)
    return {s: to_uint8(downscale(x, s, mode=mode)) for s in lr_sizes}


def hr_lr_grid(images, lr_sizes=(4, 8, 16, 32), mode: str = "avgpool", title: str = "", row_labels=None):
    """One row per image: the HR image, then its LR versions (shown with nearest upsampling, as pixels)."""
    import matplotlib.pyplot as plt

    hr = to_uint8(_as_tensor(images))
    lrs = lr_versions(images, lr_sizes, mode)
    n, cols = len(hr), 1 + len(lr_sizes)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(hr[i])
        for j, s in enumerate(lr_sizes, start=1):
            axes[i, j].imshow(lrs[s][i], interpolation="nearest")
        if row_labels is not None:
            axes[i, 0].set_ylabel(str(row_labels[i]), fontsize=7)
    for j, lab in enumerate([f"HR {hr.shape[1]}"] + [f"LR {s}x{s}" for s in lr_sizes]):
        axes[0, j].set_title(lab, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def factor_summary(factors: dict[str, np.ndarray], specs) -> pd.DataFrame:
    """One row per factor: group (coarse/fine), kind, and its spread (class frequencies or range)."""
    rows = []
    for spec in [s for s in specs if s.group in ("coarse", "fine")]:  # nuisance seeds carry no meaning
        v = np.asarray(factors[spec.name])
        if spec.kind == "categorical":
            counts = np.bincount(v.astype(int), minlength=len(spec.classes))
            freq = counts / max(len(v), 1)
            rows.append({"factor": spec.name, "group": spec.group, "kind": spec.kind,
                         "classes": len(spec.classes), "min_class_freq": freq.min(), "max_class_freq": freq.max(),
                         "mean": np.nan, "std": np.nan})
        else:
            rows.append({"factor": spec.name, "group": spec.group, "kind": spec.kind, "classes": 0,
                         "min_class_freq": np.nan, "max_class_freq": np.nan,
                         "mean": float(v.mean()), "std": float(v.std())})
    return pd.DataFrame(rows).set_index("factor")


def factor_distributions(factors: dict[str, np.ndarray], specs, title: str = ""):
    """Histograms (continuous) and bar charts (categorical) of every factor, coarse ones first."""
    import matplotlib.pyplot as plt

    specs = sorted((s for s in specs if s.group in ("coarse", "fine")), key=lambda s: (s.group != "coarse", s.name))
    cols = 6
    rows = -(-len(specs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.9 * rows), squeeze=False)
    for ax, spec in zip(axes.flat, specs):
        v = np.asarray(factors[spec.name])
        if spec.kind == "categorical":
            counts = np.bincount(v.astype(int), minlength=len(spec.classes))
            ax.bar(range(len(counts)), counts, color="tab:orange" if spec.group == "fine" else "tab:blue")
            ax.set_xticks(range(len(counts)), [c[:6] for c in spec.classes], fontsize=6, rotation=45)
        else:
            ax.hist(v, bins=15, color="tab:orange" if spec.group == "fine" else "tab:blue")
            ax.tick_params(labelsize=6)
        ax.set_title(f"{spec.name} ({spec.group})", fontsize=7)
    for ax in list(axes.flat)[len(specs):]:
        ax.axis("off")
    if title:
        fig.suptitle(title + "  (blue: coarse, orange: fine)", fontsize=9)
    fig.tight_layout()
    return fig


def lr_explorer(images, lr_sizes=(4, 8, 16, 32), mode: str = "avgpool"):
    """An ipywidgets panel for JupyterLab: pick an image and an LR size, see HR and LR side by side.

    In a batch run (``lrkit reproduce`` sets ``LRKIT_BATCH=1`` for its kernels) the panel is not built: a cell whose
    value is a widget sometimes never finishes under papermill/nbclient (their open bugs nbclient#312 and
    papermill#723; seen here twice, kernel and client both idle). The batch shows the first image's HR/LR row
    instead, and says so in its title."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    if os.environ.get(BATCH_ENV, "") not in ("", "0"):
        return hr_lr_grid(_as_tensor(images)[:1], lr_sizes, mode,
                          title="batch run: the interactive explorer is built in JupyterLab only")

    hr = to_uint8(_as_tensor(images))
    lrs = lr_versions(images, lr_sizes, mode)

    def show(index: int, lr_size: int) -> None:
        fig, (a, b) = plt.subplots(1, 2, figsize=(5, 2.6))
        a.imshow(hr[index])
        a.set_title(f"HR {hr.shape[1]} #{index}", fontsize=8)
        b.imshow(lrs[lr_size][index], interpolation="nearest")
        b.set_title(f"LR {lr_size}x{lr_size}", fontsize=8)
        for ax in (a, b):
            ax.axis("off")
        plt.show()

    return widgets.interactive(
        show,
        index=widgets.IntSlider(min=0, max=len(hr) - 1, value=0, description="image"),
        lr_size=widgets.Dropdown(options=list(lr_sizes), value=lr_sizes[min(1, len(lr_sizes) - 1)], description="LR"),
    )


def translation_grid(sources: torch.Tensor, targets_lr: torch.Tensor, outputs: torch.Tensor,
                     targets_hr: torch.Tensor | None = None, pad: int = 2) -> torch.Tensor:
    """The paper's Fig. 5 layout as one image [3, H', W'] in [-1, 1].

    ``sources`` [S, 3, H, H] go across the top row; ``targets_lr`` [T, 3, l, l] down the left column (nearest
    upsampled to H, so LR pixels show as blocks); ``outputs`` [T, S, 3, H, H] fill the grid (row t = target t);
    ``targets_hr`` [T, 3, H, H], when given, form a last column (the real HR target, never seen by the model).
    White (1.0) padding of ``pad`` px and a blank top-left cell.
    """
    S, T = sources.shape[0], targets_lr.shape[0]
    if outputs.shape[:2] != (T, S):
        raise ValueError(f"outputs must be [T={T}, S={S}, 3, H, W], got {tuple(outputs.shape)}")
    H = sources.shape[-1]
    lr_up = torch.nn.functional.interpolate(targets_lr.float(), size=(H, H), mode="nearest")
    cols = S + 1 + (targets_hr is not None)
    cell = H + pad
    grid = torch.ones(3, (T + 1) * cell + pad, cols * cell + pad)

    def put(img: torch.Tensor, r: int, c: int) -> None:
        grid[:, pad + r * cell: pad + r * cell + H, pad + c * cell: pad + c * cell + H] = img.float().clamp(-1, 1)

    for s in range(S):
        put(sources[s], 0, s + 1)
    for t in range(T):
        put(lr_up[t], t + 1, 0)
        for s in range(S):
            put(outputs[t, s], t + 1, s + 1)
        if targets_hr is not None:
            put(targets_hr[t], t + 1, S + 1)
    return grid


def versus_grid(sources: torch.Tensor, targets_lr: torch.Tensor, references: torch.Tensor, ours: torch.Tensor,
                theirs: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """The paper's Fig. 6 layout as one image [3, H', W'] in [-1, 1]: the LR targets across the top row (nearest
    upsampled), the HR references (the same images at full resolution) across the bottom row, and for each source
    (left column) two rows: I2I-LR's outputs ``ours`` [S, T, 3, H, H] (given the LR targets), then StarGAN v2's
    ``theirs`` [S, T, 3, H, H] (given the HR references). White padding, blank corners."""
    S, T = sources.shape[0], targets_lr.shape[0]
    for name, x in (("ours", ours), ("theirs", theirs)):
        if x.shape[:2] != (S, T):
            raise ValueError(f"{name} must be [S={S}, T={T}, 3, H, W], got {tuple(x.shape)}")
    if references.shape[0] != T:
        raise ValueError(f"references must be [T={T}, 3, H, W] (the HR version of each LR target)")
    H = sources.shape[-1]
    lr_up = torch.nn.functional.interpolate(targets_lr.float(), size=(H, H), mode="nearest")
    cell = H + pad
    rows = 2 * S + 2
    grid = torch.ones(3, rows * cell + pad, (T + 1) * cell + pad)

    def put(img: torch.Tensor, r: int, c: int) -> None:
        grid[:, pad + r * cell: pad + r * cell + H, pad + c * cell: pad + c * cell + H] = img.float().clamp(-1, 1)

    for t in range(T):
        put(lr_up[t], 0, t + 1)
        put(references[t], rows - 1, t + 1)
    for s in range(S):
        put(sources[s], 1 + 2 * s, 0)
        for t in range(T):
            put(ours[s, t], 1 + 2 * s, t + 1)
            put(theirs[s, t], 2 + 2 * s, t + 1)
    return grid


def show_grid(grid: torch.Tensor, title: str = "", col_labels: str = ""):
    """A matplotlib figure of a [3, H, W] grid in [-1, 1], each image pixel shown as a block (nearest), enlarged by
    a whole factor so small grids (32 px smoke models) stay readable; a long title is wrapped."""
    import textwrap

    import matplotlib.pyplot as plt

    h, w = grid.shape[-2:]
    scale = max(1, 480 // max(h, 1))
    dpi = 100
    width_in = max(w * scale / dpi, 4.0)
    lines = textwrap.wrap(title, width=int(width_in * 14)) if title else []
    head_in = 0.2 * len(lines) + (0.2 if col_labels else 0.0) + 0.1
    fig = plt.figure(figsize=(width_in, h * scale / dpi + head_in), dpi=dpi)
    img_frac = (h * scale / dpi) / (h * scale / dpi + head_in)
    ax = fig.add_axes((0, 0, 1, img_frac))
    ax.imshow(to_uint8(grid), interpolation="nearest")
    ax.set_axis_off()
    if lines:
        fig.suptitle("\n".join(lines), fontsize=8, y=0.995, va="top")
    if col_labels:
        fig.text(0.5, img_frac + 0.01, col_labels, ha="center", va="bottom", fontsize=7)
    return fig


def loss_curves(losses_jsonl, keys=("d_real", "d_fake", "r1", "g_adv", "cyc", "lr_err_grey"), title: str = ""):
    """Training curves from a trainer's ``losses.jsonl`` (one panel per key, x = step)."""
    import matplotlib.pyplot as plt

    from lrkit.fsutil import read_jsonl

    rows = read_jsonl(losses_jsonl)
    if not rows:
        raise ValueError(f"{losses_jsonl} has no loss records yet")
    keys = [k for k in keys if k in rows[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.4), squeeze=False)
    steps = [r["step"] for r in rows]
    for ax, k in zip(axes[0], keys):
        ax.plot(steps, [r[k] for r in rows], lw=0.8)
        ax.set_title(k, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def pulse_comparison_grid(targets_lr: torch.Tensor, pulse: torch.Tensor, references: torch.Tensor,
                          ours: torch.Tensor, targets_hr: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """The I2I-LR paper's Fig. 7 layout as one image [3, H', W'] in [-1, 1]: the LR targets across the top row
    (nearest upsampled), PULSE's candidates ``pulse`` [K, T, 3, H, H] (one row per duplicate, blank left cell),
    then for each HR reference (left column, ``references`` [R, 3, H, H]) a row of I2I-LR's outputs ``ours``
    [R, T, 3, H, H], and the real HR targets ``targets_hr`` [T, 3, H, H] (seen by neither) across the bottom."""
    T, K, R = targets_lr.shape[0], pulse.shape[0], references.shape[0]
    if pulse.shape[1] != T or ours.shape[:2] != (R, T) or targets_hr.shape[0] != T:
        raise ValueError(f"expected pulse [K, T={T}], ours [R={R}, T={T}], targets_hr [T={T}]; got "
                         f"{tuple(pulse.shape[:2])}, {tuple(ours.shape[:2])}, {tuple(targets_hr.shape[:1])}")
    H = targets_hr.shape[-1]
    lr_up = torch.nn.functional.interpolate(targets_lr.float(), size=(H, H), mode="nearest")
    cell = H + pad
    rows = K + R + 2
    grid = torch.ones(3, rows * cell + pad, (T + 1) * cell + pad)

    def put(img: torch.Tensor, r: int, c: int) -> None:
        grid[:, pad + r * cell: pad + r * cell + H, pad + c * cell: pad + c * cell + H] = img.float().clamp(-1, 1)

    for t in range(T):
        put(lr_up[t], 0, t + 1)
        for k in range(K):
            put(pulse[k, t], 1 + k, t + 1)
        for r in range(R):
            put(ours[r, t], 1 + K + r, t + 1)
        put(targets_hr[t], rows - 1, t + 1)
    for r in range(R):
        put(references[r], 1 + K + r, 0)
    return grid
