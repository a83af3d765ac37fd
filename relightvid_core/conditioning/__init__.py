"""Lighting inputs: foreground composites, size policies, backgrounds, light presets, HDR maps and text."""

from .background import LengthPolicy, background_indices, fit_background, no_background
from .foreground import (
    ICLIGHT_GRAY,
    OFFICIAL_GRAY,
    OfficialClip,
    composite_foreground,
    prepare_masks,
    read_official_clip,
)
from .geometry import GeometryPlan, SizePolicy, apply_geometry, fit_to_size, plan_geometry
from .hdr import ToneMap, env_map_panoramas, env_map_plates, read_env_map, tonemap
from .presets import LIGHT_DIRECTIONS, PRESET_NAMES, light_plate
from .text import TextEncoder, load_text_encoder

__all__ = [
    "ICLIGHT_GRAY",
    "LIGHT_DIRECTIONS",
    "OFFICIAL_GRAY",
    "PRESET_NAMES",
    "GeometryPlan",
    "LengthPolicy",
    "OfficialClip",
    "SizePolicy",
    "TextEncoder",
    "ToneMap",
    "apply_geometry",
    "background_indices",
    "composite_foreground",
    "env_map_panoramas",
    "env_map_plates",
    "fit_background",
    "fit_to_size",
    "light_plate",
    "load_text_encoder",
    "no_background",
    "plan_geometry",
    "prepare_masks",
    "read_env_map",
    "read_official_clip",
    "tonemap",
]
