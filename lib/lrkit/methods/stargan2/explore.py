"""StarGAN v2 in the explorer: reference-guided (the target HR image is the reference, as in I2I-LR's comparison)
or latent-guided (a seeded z scaled by ``noise_std``) translation of one source. Its LR error is the average pool of
the output against the target's LR: StarGAN v2 does not try to fit it, which is the point of the comparison."""

from __future__ import annotations

from functools import lru_cache

import torch

from lrkit import weights as W
from lrkit.data.ops import make_lr
from lrkit.explore.core import Controls, ExploreInputs, MethodAdapter, MethodRun, ModelEntry

__all__ = ["ADAPTER", "LR_SIZE", "OFFICIAL"]

LR_SIZE = 8  # the LR target I2I-LR's comparison measures StarGAN v2 against (8x8)
# The released nets_ema files (lrkit.weights): name -> (dataset, synthfaces variant of the gallery, w_hpf)
OFFICIAL = {"stargan2_celeba_hq": ("celeba_hq", "faces", 1.0), "stargan2_afhq": ("afhq", "animals", 0.0)}


def find(headers: dict[str, list[dict]]) -> list[ModelEntry]:
    from lrkit.methods.stargan2.config import Stargan2Config

    out = []
    for h in headers.get("stargan2", []):
        cfg = Stargan2Config.from_dict(h["config"])
        out.append(ModelEntry("StarGAN v2", cfg.preset, cfg.dataset, cfg.synth_variant, h["step"], h["source"],
                              cfg.img_size, (LR_SIZE,), (h["path"],)))
    for name, (dataset, variant, _) in OFFICIAL.items():
        path = W.official_path(name)
        if path.is_file():  # released weights in the weights cache (checked against their digest when loaded)
            out.append(ModelEntry("StarGAN v2", f"official {dataset}", dataset, variant, 100_000, "official weights",
                                  256, (LR_SIZE,), (str(path),)))
    return out


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    from lrkit.methods.stargan2.inference import load_stargan2

    official = {str(W.official_path(n)): hpf for n, (_, _, hpf) in OFFICIAL.items()}
    if path in official:  # released files carry no config: their size and high-pass weight are the release's
        return load_stargan2(path, device=device, img_size=256, w_hpf=official[path])
    return load_stargan2(path, device=device)


def run(entry: ModelEntry, inputs: ExploreInputs, controls: Controls, *, device: str = "cpu",
        progress=None) -> MethodRun:
    from lrkit.methods.stargan2.inference import translate_latent, translate_ref

    if inputs.source is None:
        raise ValueError("StarGAN v2 translates a source image: pick or upload one")
    nets = _load(entry.paths[0], device)  # a model needing FAN masks raises WeightsUnavailable offline: shown as is
    domain = entry.domain or nets.domain_names[0]
    if inputs.target_hr is not None:
        out = translate_ref(nets, inputs.source[None], inputs.target_hr[None], domain)
        how = f"reference-guided (the target HR image as reference, domain {domain})"
    else:
        z = torch.randn(1, nets.latent_dim, generator=torch.Generator().manual_seed(controls.seed))
        out = translate_latent(nets, inputs.source[None], domain, z=z * controls.noise_std)
        how = f"latent-guided (z seed {controls.seed} x {controls.noise_std}, domain {domain}): no target HR image"
    lr = inputs.target_lr.shape[-1]
    return MethodRun(out, make_lr(out, lr), f"{nets.label}: {how}")


ADAPTER = MethodAdapter("StarGAN v2", find, run, controls=("seed", "noise_std"), uses_source=True,
                        prepare=lambda entry, device: _load(entry.paths[0], device))
