"""One package per method: networks, config + presets, training task, inference and its table rows.

* ``i2ilr``: the main paper (translate a HR source to fit a LR target).
* ``stargan2``: StarGAN v2, the I2I-LR paper's reference-guided baseline.

Shared machinery (``lrkit.data``, ``metrics``, ``train``, ``evaluation``, ``runs``) never imports a method.
"""
