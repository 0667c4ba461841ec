"""synthfaces: the kit's embedded, procedural stand-in for CelebA-HQ (``"faces"``) and AFHQ (``"animals"``).

Every image is rendered with numpy from a small dictionary of known *factors* (saved alongside it), so the same
``(variant, split, index, seed)`` always gives the same factors and the same pixels, and nothing is downloaded.

Submodules
----------
* ``factors``: variants, splits, domains and sizes, the factor tables (``FactorSpec``, ``FACTORS``),
  ``factor_names``, argument checks and ``sample_factors``; its docstring describes the factors.
* ``painter``: the drawing primitives both renderers share (signed distances, colours, noise textures, the
  ``_Painter`` canvas with mass balancing, lighting); its docstring explains how the fine factors are kept out
  of the 8x8 image, and the coordinates.
* ``faces``: the face renderer (``_render_face`` and its fine features).
* ``animals``: the animal renderer (``_render_animal`` and its fine features).
* ``dataset``: ``render``, ``generate`` with its on-disk cache, ``SynthSet`` and its ``fingerprint``,
  ``SynthFacesDataset``, ``export_folder`` and ``read_factors_csv``.

Everything public is re-exported here (``from lrkit.data import synthfaces as sf; sf.generate(...)``).
"""

from __future__ import annotations

from lrkit.data.synthfaces.animals import _ANIMAL_CY, _ANIMAL_S
from lrkit.data.synthfaces.dataset import (
    SynthFacesDataset,
    SynthSet,
    cache_dir,
    cache_path,
    export_folder,
    generate,
    read_factors_csv,
    render,
)
from lrkit.data.synthfaces.faces import _FACE_CY, _FACE_S
from lrkit.data.synthfaces.factors import (
    DOMAINS,
    FACTORS,
    SIZES,
    SPLITS,
    SYNTHFACES_VERSION,
    VARIANTS,
    FactorSpec,
    factor_names,
    sample_factors,
)

# Not in __all__ but used as ``sf.<name>`` elsewhere: ``cache_path`` and ``cache_dir`` (tests), and the head
# frames ``_FACE_S``/``_FACE_CY``/``_ANIMAL_S``/``_ANIMAL_CY`` (lrkit.metrics.factor_probes).
__all__ = [
    "SYNTHFACES_VERSION",
    "VARIANTS",
    "SPLITS",
    "DOMAINS",
    "SIZES",
    "FactorSpec",
    "FACTORS",
    "factor_names",
    "sample_factors",
    "render",
    "generate",
    "SynthSet",
    "SynthFacesDataset",
    "export_folder",
    "read_factors_csv",
]
