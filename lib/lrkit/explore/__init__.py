"""The interactive explorer over every method (``notebooks/explore.ipynb``): ``open_explorer`` and its parts."""

from lrkit.explore.core import Controls, ExploreInputs, ModelEntry, Panel, make_panel, panel_figure
from lrkit.explore.registry import ADAPTERS, find_models
from lrkit.explore.widgets import Explorer, open_explorer, static_panels

__all__ = ["ADAPTERS", "Controls", "ExploreInputs", "Explorer", "ModelEntry", "Panel", "find_models", "make_panel",
           "open_explorer", "panel_figure", "static_panels"]
