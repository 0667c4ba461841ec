"""StyleGAN-1 FFHQ 1024 (Karras et al. 2019) as PULSE ships and uses it: the generator the PULSE paper (Menon et
al. 2020) searches, and with it the I2I-LR paper's Fig. 7 comparison.

* Mapping and synthesis networks with the exact parameter names, shapes and forward arithmetic of PULSE's
  ``stylegan.py`` (so its released files load strictly); configurable sizes for tiny test networks: ``nets``.
* PULSE's ``synthesis.pt`` / ``mapping.pt`` (CPU-safe loading, strict keys, one error listing every mismatch;
  writing files in that layout): ``official_files``.
* PULSE's prior (mu, sigma) fitted in streamed chunks or read from its ``gaussian_fit.pt``, and the
  ``lrkit.nets.latent_generator`` adaptor the search drives: ``prior``.

No training: these networks only run pretrained weights.

Notebooks: ``fig7_pulse_comparison`` (through ``lrkit.methods.pulse``).
"""

from lrkit.methods.stylegan1.nets import StyleGAN1Mapping, StyleGAN1Synthesis
from lrkit.methods.stylegan1.official_files import StyleGAN1FileError, load_stylegan1, write_official_layout
from lrkit.methods.stylegan1.prior import StyleGAN1LatentGenerator, fit_gaussian, load_gaussian_fit

__all__ = ["StyleGAN1Mapping", "StyleGAN1Synthesis", "StyleGAN1FileError", "load_stylegan1",
           "write_official_layout", "StyleGAN1LatentGenerator", "fit_gaussian", "load_gaussian_fit"]
