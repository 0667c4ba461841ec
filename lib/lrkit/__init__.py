"""lrkit: a reproducibility kit for generative models conditioned on very low-resolution images."""

__version__ = "0.1.0"
