"""PULSE in the explorer: K searches on one LR target through a ProGAN the kit found (shipped, trained, or given),
or StyleGAN-1 FFHQ when its released files are in the weights cache. LR sizes: every power of two from 4 that
divides the generator's output, up to half of it."""

from __future__ import annotations

from functools import lru_cache

from lrkit.explore.core import Controls, ExploreInputs, MethodAdapter, MethodRun, ModelEntry

__all__ = ["ADAPTER", "DEFAULT_STEPS"]

DEFAULT_STEPS = 100  # PULSE's own default


def _lr_sizes(hr: int) -> tuple[int, ...]:
    return tuple(s for s in (4, 8, 16, 32, 64) if s <= hr // 2 and hr % s == 0)


def find(headers: dict[str, list[dict]]) -> list[ModelEntry]:
    from lrkit import weights as W
    from lrkit.methods.progan.config import ProganConfig

    out = []
    for h in headers.get("progan", []):
        cfg = ProganConfig.from_dict(h["config"])
        hr = 4 * 2 ** (cfg.depth - 1)
        out.append(ModelEntry("PULSE", f"ProGAN {cfg.preset}", cfg.dataset, cfg.synth_variant, h["step"], h["source"],
                              hr, _lr_sizes(hr), (h["path"],)))
    names = ("stylegan1_ffhq_synthesis", "stylegan1_ffhq_mapping")
    if all(W.official_path(n).is_file() for n in names):  # PULSE's released files, in the weights cache
        out.append(ModelEntry("PULSE", "StyleGAN-1 FFHQ", "ffhq", "faces", None, "official weights", 1024,
                              _lr_sizes(1024), ("stylegan1_ffhq",)))
    return out


@lru_cache(maxsize=4)
def _generator(path: str, device: str):
    from lrkit.methods.pulse.outputs import load_generator

    return load_generator(path if path == "stylegan1_ffhq" else f"progan:{path}", device)[0]


def run(entry: ModelEntry, inputs: ExploreInputs, controls: Controls, *, device: str = "cpu",
        progress=None) -> MethodRun:
    from lrkit.methods.pulse.config import PulseConfig
    from lrkit.methods.pulse.pulse import pulse_downscale, run_pulse

    gen = _generator(entry.paths[0], device)
    cfg = PulseConfig(steps=controls.steps or DEFAULT_STEPS, duplicates=controls.k, seed=controls.seed)
    res = run_pulse(gen, inputs.target_lr[None], cfg, device=device, on_step=progress)
    out = res.output(cfg.output)[0]  # [K, 3, H, W]
    ds = pulse_downscale(out, inputs.target_lr.shape[-1], cfg.downscale).clamp(-1, 1)
    within = int((res.output_error(cfg.output)[0] <= cfg.eps).sum())
    return MethodRun(out, ds, f"PULSE {cfg.steps} steps, Adam lr {cfg.lr} ({cfg.schedule}), {controls.k} duplicates "
                              f"from seed {controls.seed}, {cfg.downscale} downscale; {within}/{controls.k} within "
                              f"eps {cfg.eps}")


ADAPTER = MethodAdapter("PULSE", find, run, controls=("lr_size", "seed", "k", "steps"), uses_source=False,
                        prepare=lambda entry, device: _generator(entry.paths[0], device))
