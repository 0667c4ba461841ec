"""The tiny I2I-LR configuration the trainer and evaluation tests share: 32 px, LR 8, widths 8/16, 16 training
images (a step takes ~0.1 s on one core)."""

from lrkit.methods.i2ilr.config import get_preset

TINY = get_preset("celebahq128_smoke").with_overrides(
    hr_size=32, g_base=8, g_max=16, d_base=8, d_max=16, synth_n_train=16, synth_n_val=24, steps=6,
    checkpoint_every=3, sample_every=3)
