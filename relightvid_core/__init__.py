"""relightvid_core: RelightVid video relighting as a plain Python library (no ComfyUI import)."""

from .errors import InputError, MissingFileError, RelightVidError, WeightFormatError
from .models import FULL_FBC, TINY, RelightVidUNet, get_config
from .weights import load_relightvid_unet, merge_official_weights, save_merged_unet

__all__ = [
    "FULL_FBC",
    "TINY",
    "InputError",
    "MissingFileError",
    "RelightVidError",
    "RelightVidUNet",
    "WeightFormatError",
    "get_config",
    "load_relightvid_unet",
    "merge_official_weights",
    "save_merged_unet",
]
