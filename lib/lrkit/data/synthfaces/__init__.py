"""synthfaces: the kit's embedded, procedural stand-in for CelebA-HQ and AFHQ (see ``factors``, which still holds
the whole implementation; the next commit splits it into submodules)."""

from lrkit.data.synthfaces.factors import *  # noqa: F401,F403
from lrkit.data.synthfaces.factors import __all__  # noqa: F401
from lrkit.data.synthfaces.factors import _ANIMAL_CY, _ANIMAL_S, _FACE_CY, _FACE_S, cache_dir, cache_path  # noqa: F401
