"""Networks: the 3-D U-Net, its blocks and temporal modules, and named configs."""

from .configs import FULL_FBC, TINY, get_config
from .unet3d import RelightVidUNet

__all__ = ["FULL_FBC", "TINY", "RelightVidUNet", "get_config"]
