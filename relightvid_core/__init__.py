"""relightvid_core: RelightVid video relighting as a plain Python library (no ComfyUI import).

Layouts: frames are ComfyUI's IMAGE layout (T, H, W, 3) float in 0..1, masks (T, H, W); latents for the
sampler are (batch, frames, 4, h, w), scaled by 0.18215; the U-Net itself takes (batch, channels, frames, h, w).
"""

from .conditioning import (
    ICLIGHT_GRAY,
    OFFICIAL_GRAY,
    LengthPolicy,
    SizePolicy,
    composite_foreground,
    env_map_plates,
    fit_background,
    fit_to_size,
    light_plate,
    load_text_encoder,
    read_env_map,
    read_official_clip,
)
from .errors import InputError, MissingFileError, RelightVidError, SamplingInterrupted, WeightFormatError
from .models import FULL_FBC, TINY, RelightVidUNet, get_config
from .sampling import (
    DEFAULT_IIE_FACTORS,
    FUSIONS,
    SCHEDULER_NAMES,
    ContextWindows,
    StepInfo,
    iie_image_conditions,
    sample,
)
from .vae import decode_latents, encode_frames
from .video_io import read_image, read_video, write_video
from .weights import load_relightvid_unet, merge_official_weights, save_merged_unet

__all__ = [
    "DEFAULT_IIE_FACTORS",
    "FULL_FBC",
    "FUSIONS",
    "ICLIGHT_GRAY",
    "OFFICIAL_GRAY",
    "SCHEDULER_NAMES",
    "TINY",
    "ContextWindows",
    "InputError",
    "LengthPolicy",
    "MissingFileError",
    "RelightVidError",
    "RelightVidUNet",
    "SamplingInterrupted",
    "SizePolicy",
    "StepInfo",
    "WeightFormatError",
    "composite_foreground",
    "decode_latents",
    "encode_frames",
    "env_map_plates",
    "fit_background",
    "fit_to_size",
    "get_config",
    "iie_image_conditions",
    "light_plate",
    "load_relightvid_unet",
    "load_text_encoder",
    "merge_official_weights",
    "read_env_map",
    "read_image",
    "read_official_clip",
    "read_video",
    "sample",
    "save_merged_unet",
    "write_video",
]
