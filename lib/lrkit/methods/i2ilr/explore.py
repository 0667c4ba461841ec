"""I2I-LR in the explorer: every I2I-LR checkpoint found, run on one source and one LR target."""

from __future__ import annotations

from functools import lru_cache

from lrkit.data.ops import make_lr
from lrkit.explore.core import Controls, ExploreInputs, MethodAdapter, MethodRun, ModelEntry

__all__ = ["ADAPTER"]


def find(headers: dict[str, list[dict]]) -> list[ModelEntry]:
    from lrkit.methods.i2ilr.config import I2ILRConfig

    out = []
    for h in headers.get("i2ilr", []):
        cfg = I2ILRConfig.from_dict(h["config"])
        domain = cfg.domains[0] if cfg.domains and len(cfg.domains) == 1 else ""
        out.append(ModelEntry("I2I-LR", cfg.preset, cfg.dataset, cfg.synth_variant, h["step"], h["source"],
                              cfg.hr_size, (cfg.lr_size,), (h["path"],), domain))
    return out


@lru_cache(maxsize=8)
def _load(path: str, device: str):
    from lrkit.methods.i2ilr.inference import load_i2ilr

    return load_i2ilr(path, device=device)


def run(entry: ModelEntry, inputs: ExploreInputs, controls: Controls, *, device: str = "cpu",
        progress=None) -> MethodRun:
    from lrkit.methods.i2ilr.inference import translate

    if inputs.source is None:
        raise ValueError("I2I-LR translates a source image: pick or upload one")
    g = _load(entry.paths[0], device)
    out = translate(g.G, inputs.source[None], inputs.target_lr[None])
    return MethodRun(out, make_lr(out, entry.lr_sizes[0]), f"{g.label}: G_ema(source, LR target), deterministic")


ADAPTER = MethodAdapter("I2I-LR", find, run, controls=(), uses_source=True,
                        prepare=lambda entry, device: _load(entry.paths[0], device))
