"""I2I-LR: "Image-to-image translation with low-resolution conditioning" (the kit's main paper, i2ilr_paper).

Paper sections -> modules:

* §3.2-3.3, figs 3-4 (Pono/SPAdaIN U-Net generator, LR-difference discriminator): ``generator``,
  ``discriminator``, ``layers`` (PONO, SPAdaIN, moment shortcut, eq. 5 difference map).
* §4.1 (settings, presets): ``config``; §3.2 training (four G passes, cycle loss eq. 8, R1): ``task``.
* Inference with G_ema (``lrkit translate``): ``inference``.
* Table 1 protocol (ten sources per LR target) and offline metrics: ``evaluation``; Tables 1-4 as data and their
  reproduction: ``tables``; Figs 5, 6, 8 as data and their drawing: ``figures``; Fig. 7 (vs PULSE, with its
  table and timings): ``fig7``.
* The paper's vs the public code's training recipe: ``config.RECIPES``; the small-scale training study (which
  change makes G use its source): ``study``.

Notebooks: ``train_i2ilr``, ``table1_celebahq_fid_lpips``, ``table2_density_coverage``, ``table3_afhq``,
``table4_lr_resolution``, ``fig5_grid``, ``fig6_vs_stargan``, ``fig7_pulse_comparison``, ``fig8_afhq``, ``i2ilr_training_study``.
"""
