"""Networks: the 3-D U-Net, its blocks and temporal modules, and named configs.

The configs import nothing heavy; the networks import diffusers, so they load on first use (``lazy.py``).
"""

from ..lazy import lazy_exports
from .configs import FULL_FBC, TINY, get_config

__getattr__, __dir__ = lazy_exports(__name__, {"RelightVidUNet": ".unet3d"})
__all__ = ["FULL_FBC", "TINY", "RelightVidUNet", "get_config"]
