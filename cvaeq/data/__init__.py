"""A world's data: its rendered grid, grid files, resampling to a story, labelled pictures from files, torch datasets.

The most used entry points, importable from here (torch is not imported
until :mod:`cvaeq.data.dataset` is):

>>> from cvaeq.data import load_grid, resample, show_image, build_grid, load_labelled, LabelledPictures
"""

from .files import Grid, load_grid
from .grid import build_grid, image_of, show_image
from .labelled import LabelledPictures, load_labelled, training_parts
from .resample import Resampled, resample, save_resampled

__all__ = [
    "Grid",
    "load_grid",
    "build_grid",
    "image_of",
    "show_image",
    "Resampled",
    "resample",
    "save_resampled",
    "LabelledPictures",
    "load_labelled",
    "training_parts",
]
