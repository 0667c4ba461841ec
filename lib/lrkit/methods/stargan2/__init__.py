"""StarGAN v2 (stargan_v2_paper): the I2I-LR paper's reference-guided baseline (I2I-LR Tables 1-3, Fig. 6).

* §2 networks (generator with the high-pass path, mapping network, style encoder, discriminator): ``nets``;
  the FAN landmark network for the high-pass masks: ``lrkit.nets.fan`` (shared: SR-NAM's metric runs it too);
  the released ``*_nets_ema.ckpt`` / ``wing.ckpt`` files with their exact keys: ``official_files``.
* §2 training (adversarial, style reconstruction, diversity-sensitive and cycle losses; the released configs as
  presets): ``config``, ``task``.
* Inference (``lrkit translate --method stargan2``, the official sampler's pixels): ``inference``.
* §4 evaluation (reference-guided, 10 outputs per source, per task, averaged): ``evaluation``; as the baseline
  of another paper's tables on that paper's val set: ``baseline``.

Notebooks: ``table1_celebahq_fid_lpips``, ``table2_density_coverage``, ``table3_afhq`` (its rows) and
``fig6_vs_stargan``.
"""
