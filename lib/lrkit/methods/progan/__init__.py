"""ProGAN (Karras et al. 2018, progressive growing) as the SR-NAM paper (sr_nam_paper) trains it: its §4.1 face
generator, 4 -> 64 px in 5 stages, the HR prior of its latent search (and a generator PULSE can search).

* Networks (equalized learning rate, pixel norm, minibatch stddev, fade-in): ``nets``; the trained generator as
  the latent search's generator: ``nets.ProGANLatentGenerator`` and ``latent.load_progan``.
* Training (WGAN-GP with drift, the per-stage epochs/batches schedule as a pure function of the step, EMA):
  ``config`` (presets ``sr_nam64`` and its ``_smoke`` / ``_cpu`` / ``_quick`` synthfaces versions), ``losses``,
  ``task`` (``train_progan``, ``ensure_trained``).

Notebooks: ``fig7_pulse_comparison`` (the generator PULSE searches on synthfaces and without StyleGAN weights);
SR-NAM's Fig. 5 (samples at 4...64 px with fixed noise) comes with the SR-NAM notebooks.
"""
