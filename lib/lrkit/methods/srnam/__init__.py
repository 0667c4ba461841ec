"""SR-NAM (the sr_nam_paper: one real LR face -> many HR faces) beyond its ProGAN (``lrkit.methods.progan``):

* the degradation GAN of its §3.2, HR 64 px + noise -> real-looking LR 16 px: ``nets``, ``losses`` (pixel + VGG-19
  + hinge or WGAN-GP), ``config`` (presets ``srnam_deg`` and its ``_smoke`` / ``_cpu`` / ``_quick`` synthfaces
  versions, whose "real LR" set is the known ``synthlr-v1`` process of ``lrkit.data.synthetic_lr``), ``task``;
* the search of eq. 6 through it on the shared engine: ``search``; ``lrkit srnam``'s files: ``outputs``;
* the paper's figures ``figures`` (Figs. 4-8) and the landmark table of eq. 7 ``table`` (SR-NAM vs PULSE on the
  same ProGAN vs bicubic).

Notebooks: ``srnam_degradation`` (Fig. 4), ``srnam_progan_growth`` (Fig. 5), ``srnam_grids`` (Figs. 6-7 and the
landmark table), ``srnam_failures`` (Fig. 8).
"""
