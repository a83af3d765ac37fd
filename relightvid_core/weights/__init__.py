"""Weight files: detect a format, convert it to our keys, validate shapes, load into a U-Net."""

from .convert import merge_official_weights
from .detect import Detection, WeightFormat, detect_format
from .files import TensorSource, open_source
from .load import (
    MotionWeights,
    build_unet,
    expected_shapes,
    load_hdr_encoder,
    load_motion_weights,
    load_relightvid_unet,
    load_spatial_weights,
    save_merged_unet,
)

__all__ = [
    "Detection",
    "MotionWeights",
    "TensorSource",
    "WeightFormat",
    "build_unet",
    "detect_format",
    "expected_shapes",
    "load_hdr_encoder",
    "load_motion_weights",
    "load_relightvid_unet",
    "load_spatial_weights",
    "merge_official_weights",
    "open_source",
    "save_merged_unet",
]
