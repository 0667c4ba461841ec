"""The explorer's model-free parts: the models the kit can find, input images, one panel's outputs and numbers.

A *method adapter* (``methods/<method>/explore.py``, listed in ``lrkit.explore.registry``) turns the checkpoints
found here into ``ModelEntry`` rows and runs one of them on one input (``ExploreInputs`` + ``Controls``), returning
the HR outputs and their downscaled versions as that method measures itself (I2I-LR: the average pool of its
training data; PULSE: its bicubic downscale; SR-NAM: its degradation net). ``make_panel`` adds the numbers every
panel shows: LR error in grey levels, ms per output, and (synthfaces inputs, when asked) the factor probes'
identity to the source and faithfulness to the target.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.data.ops import to_uint8

__all__ = ["ModelEntry", "Controls", "ExploreInputs", "MethodRun", "Panel", "MethodAdapter", "checkpoint_headers",
           "image_from_upload", "make_panel", "panel_figure", "GREY_LEVELS"]

GREY_LEVELS = 127.5  # one unit of [-1, 1] in 8-bit grey levels


@dataclass(frozen=True)
class ModelEntry:
    """One model the picker lists."""

    method: str  # the adapter's name: "I2I-LR", "StarGAN v2", "PULSE", "SR-NAM"
    preset: str
    dataset: str  # what it was trained on ("synthfaces", "celeba_hq", ...)
    variant: str  # the synthfaces variant its gallery shows ("faces" | "animals")
    step: int | None
    source: str  # "shipped" | "model cache" | "training run" | "given path" | "official weights"
    hr_size: int
    lr_sizes: tuple[int, ...]  # LR sizes it takes (I2I-LR: its one; PULSE: every divisor it can search for)
    paths: tuple[str, ...]  # the checkpoint(s) behind it (SR-NAM: ProGAN, degradation net)
    domain: str = ""  # StarGAN v2 / AFHQ models: the domain their gallery and references come from

    @property
    def label(self) -> str:
        step = f", step {self.step}" if self.step is not None else ""
        lr = "/".join(map(str, self.lr_sizes))
        return f"{self.method}: {self.preset} ({self.hr_size} px, LR {lr}{step}, {self.source})"


@dataclass(frozen=True)
class Controls:
    """What a user can turn. A method uses the ones its adapter lists (``MethodAdapter.controls``)."""

    lr_size: int = 0  # 0: the model's first
    seed: int = 0  # search starts, StarGAN v2's latent z, SR-NAM's degradation noise
    k: int = 3  # samples per input (PULSE duplicates, SR-NAM starts)
    steps: int = 0  # search steps (0: the adapter's default)
    noise: str = "fixed"  # SR-NAM: the degradation net's noise during the search ("fixed" | "zero")
    noise_std: float = 1.0  # StarGAN v2 latent mode: scale of z (1: the prior)
    probes: bool = False  # score the outputs with the synthfaces factor probes (trained once, then cached)


@dataclass
class ExploreInputs:
    """One input: the source HR image (methods that translate one), the target HR image if there is one, and the LR
    target the method must fit. Tensors [3, H, W] in [-1, 1]."""

    target_lr: torch.Tensor
    source: torch.Tensor | None = None
    target_hr: torch.Tensor | None = None
    source_factors: dict | None = None  # synthfaces gallery images: their true factors (for the probes)
    target_factors: dict | None = None
    label: str = ""  # where the images came from ("synthfaces-faces val #3 -> #7", "upload a.png")


@dataclass
class MethodRun:
    outputs: torch.Tensor  # [K, 3, H, W] in [-1, 1]
    downscaled: torch.Tensor  # [K, 3, s, s]: each output through the method's own downscaler
    notes: str  # how it was produced (steps, seeds, which EMA copy, ...)


@dataclass(frozen=True)
class MethodAdapter:
    name: str
    find: Callable[[dict[str, list[dict]]], list[ModelEntry]]  # checkpoint headers by task -> entries
    run: Callable[..., MethodRun]  # (entry, inputs, controls, *, device, progress) -> MethodRun
    controls: tuple[str, ...]  # the Controls fields it uses
    uses_source: bool  # translates a source image (I2I-LR, StarGAN v2) vs. super-resolves the LR alone
    make_lr: Callable[[torch.Tensor, ModelEntry, int], torch.Tensor] | None = None  # target HR -> the LR it fits
    # (None: the 8-bit average pool, the I2I-LR data's DS operator)
    prepare: Callable[[ModelEntry, str], object] | None = None  # (entry, device): load and cache the networks, so
    # that "ms per output" times the method, not the file reads


@dataclass
class Panel:
    entry: ModelEntry
    inputs: ExploreInputs
    controls: Controls
    run: MethodRun
    numbers: dict[str, object] = field(default_factory=dict)

    @property
    def diff(self) -> torch.Tensor:
        """[K, s, s]: |DS(output) - LR target| averaged over channels, in grey levels."""
        return (self.run.downscaled - self.inputs.target_lr[None]).abs().mean(1) * GREY_LEVELS


def checkpoint_headers(paths: Sequence[tuple[str, str]]) -> dict[str, list[dict]]:
    """``[(path, source)]`` -> task -> ``[{path, source, config, step}]`` read through a memory map; a file that is
    not an lrkit checkpoint is listed under ``"unreadable"`` with its one-line reason (never dropped silently)."""
    from lrkit.train.checkpoint import load_checkpoint

    out: dict[str, list[dict]] = {}
    seen = set()
    for path, source in paths:
        p = str(Path(path).resolve())
        if p in seen:
            continue
        seen.add(p)
        try:
            ck = load_checkpoint(p, mmap=True)
        except (ValueError, FileNotFoundError) as exc:
            out.setdefault("unreadable", []).append({"path": p, "source": source, "error": str(exc).splitlines()[0]})
            continue
        out.setdefault(ck["task"], []).append({"path": p, "source": source, "config": ck["config"],
                                               "step": int(ck["step"])})
    return out


def image_from_upload(data: bytes, size: int, name: str = "upload") -> tuple[torch.Tensor, str]:
    """An uploaded image file -> ([3, size, size] in [-1, 1], what was done to it). Non-square images are
    center-cropped to a square first; any other size is resized (Lanczos) and the message says so. Not an image:
    a one-line ValueError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{name} is not an image PIL can read ({type(exc).__name__}); upload a PNG or JPEG") from exc
    w, h = im.size
    notes = []
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
        notes.append(f"center-cropped from {w}x{h} to {s}x{s}")
    if im.size[0] != size:
        notes.append(f"resized from {im.size[0]} to {size} px")
        im = im.resize((size, size), Image.LANCZOS)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
    return x, f"{name}: " + ("; ".join(notes) if notes else f"used as it is ({size}x{size})")


def make_panel(adapter: MethodAdapter, entry: ModelEntry, inputs: ExploreInputs, controls: Controls, *,
               device: str = "cpu", progress=None, probes=None) -> Panel:
    """Run ``entry`` on ``inputs`` and measure the result (module docstring). ``probes``: factor probes to read the
    outputs with (default: ``load_or_train_probes`` at the outputs' size, cached by content)."""
    if adapter.prepare is not None:
        adapter.prepare(entry, device)
    if "steps" in adapter.controls:  # a search: the first optimizer imports torch._dynamo (seconds), not its cost
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    t0 = time.perf_counter()
    run = adapter.run(entry, inputs, controls, device=device, progress=progress)
    seconds = time.perf_counter() - t0
    k = len(run.outputs)
    err = (run.downscaled - inputs.target_lr[None]).abs().mean((1, 2, 3)) * GREY_LEVELS  # [K]
    numbers: dict[str, object] = {
        "LR error (grey levels, mean over outputs)": float(err.mean()),
        "LR error per output": [round(float(e), 3) for e in err],
        "ms per output": 1000 * seconds / max(k, 1),
        "outputs": k,
    }
    if k > 1:
        flat = run.outputs.flatten(1)
        numbers["diversity (mean pairwise L1 between outputs, grey levels)"] = float(
            torch.pdist(flat, p=1).mean() / flat.shape[1] * GREY_LEVELS)
    if controls.probes and inputs.target_factors is not None:
        numbers.update(_probe_numbers(entry, inputs, run.outputs, device, probes))
    elif controls.probes:
        numbers["factor probes"] = "n/a: the input is not a synthfaces gallery image (no true factors)"
    return Panel(entry, inputs, controls, run, numbers)


def _probe_numbers(entry: ModelEntry, inputs: ExploreInputs, outputs: torch.Tensor, device: str, probes) -> dict:
    """The probes' readout of the outputs: fine factors against the source's (a translation) or the true HR
    image's (a super-resolution: no source), coarse ones against the target's."""
    from lrkit.metrics.factor_probes import synthfaces_factors

    k = len(outputs)
    translates = inputs.source_factors is not None
    src = inputs.source_factors if translates else inputs.target_factors
    rep = {name: np.repeat(np.asarray([v]), k) for name, v in src.items()}
    tgt = {name: np.repeat(np.asarray([v]), k) for name, v in inputs.target_factors.items()}
    r = synthfaces_factors(outputs, rep, tgt, variant=entry.variant, device=device, probes=probes)
    out = {("identity to the source (fine factors), agreement" if translates
            else "fine factors of the true HR image, agreement"): r["identity_fine_agreement"],
           "faithfulness to the LR target (coarse factors), agreement": r["faithful_coarse_agreement"]}
    if translates:  # how often the target's own fine factors agree with the source's: the no-skill level
        out["chance (the target's fine factors vs the source's)"] = r["chance_fine"]
    return out


def _up(x: torch.Tensor, size: int) -> np.ndarray:
    return to_uint8(F.interpolate(x[None], size=(size, size), mode="nearest"))[0]


def panel_figure(panel: Panel, max_outputs: int = 6):
    """One row per output: [source] [target HR] LR target | output | DS(output) | |difference| map; the numbers in
    the title. Returns a matplotlib figure."""
    import matplotlib.pyplot as plt

    run, inp = panel.run, panel.inputs
    k = min(len(run.outputs), max_outputs)
    size = run.outputs.shape[-1]
    head = [("source", inp.source), ("target HR", inp.target_hr)]
    head = [(t, x) for t, x in head if x is not None]
    cols = len(head) + 4
    fig, axes = plt.subplots(k, cols, figsize=(1.7 * cols, 1.8 * k + 0.9), squeeze=False)
    diff = panel.diff
    vmax = max(float(diff.max()), 1.0)
    for i in range(k):
        cells = [(t, _up(x, size)) for t, x in head] + [
            ("LR target", _up(inp.target_lr, size)), (f"output {i + 1}", to_uint8(run.outputs[i][None])[0]),
            ("DS(output)", _up(run.downscaled[i], size))]
        for j, (title, img) in enumerate(cells):
            axes[i, j].imshow(img, interpolation="nearest")
            axes[i, j].set_title(title if i == 0 or title.startswith("output") else "", fontsize=7)
        im = axes[i, -1].imshow(diff[i].numpy(), cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        axes[i, -1].set_title(f"|diff| {float(diff[i].mean()):.2f}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[:, -1].tolist(), shrink=0.8, label="grey levels")
    n = panel.numbers
    fig.suptitle(f"{panel.entry.label}\n{inp.label}; LR error {n['LR error (grey levels, mean over outputs)']:.2f} "
                 f"grey levels, {n['ms per output']:.0f} ms per output", fontsize=8)
    return fig
