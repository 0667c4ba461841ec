"""Training machinery shared by every trainer in the kit (I2I-LR now, StarGAN v2 later).

It knows nothing about GANs or images beyond "a grid to save":

* ``lrkit.train.ema``: exponential moving averages of a network's weights (the nets that are evaluated).
* ``lrkit.train.checkpoint``: one self-describing checkpoint format (plain tensors and containers, so
  ``torch.load(weights_only=True)`` reads it), RNG capture/restore, strict restore with clear errors.
* ``lrkit.train.loop``: the one loop skeleton. A trainer is a ``TrainTask`` (modules, optimizers, one
  ``train_step(step)``, one ``sample_grid(step)``); ``train`` owns the run folder, logging, sample PNGs,
  checkpoints and exact ``--resume``.

Resuming is exact (bit-identical on CPU) when the task derives everything from the global step (data order,
schedules) and draws its remaining randomness from the global RNGs that the checkpoint stores.
"""
