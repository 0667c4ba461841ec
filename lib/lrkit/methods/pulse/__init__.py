"""PULSE (Menon et al. 2020): latent search in a pretrained face generator for HR images that downscale to an LR
image -- the I2I-LR paper's Fig. 7 comparison.

* Settings (PULSE's ``run.py`` defaults, faithful unless named otherwise): ``config``.
* The search on any ``lrkit.nets.latent_generator`` generator (StyleGAN-1 FFHQ with PULSE's prior, or an lrkit
  ProGAN), through the shared engine ``lrkit.search.engine``: ``pulse``.
* ``lrkit pulse``: generators, LR files, outputs and their JSON lines: ``outputs``.

Fixed relative to PULSE (its users' reports, REFERENCE_NOTES): success per image (PULSE's batch-summed clamp makes
a batch > 1 never succeed), one seed per duplicate (PULSE's are identical), CPU runs, and a search that does not
reach eps still writes its last and best images with status "not within eps".

Notebooks: ``fig7_pulse_comparison`` (through ``lrkit.methods.i2ilr.fig7``).
"""
