"""Pure conversions of each weight format into the U-Net's key space, and the official merge.

Nothing here opens a file. Key conversions return *key maps* (our key → source key) so the loader can
stream tensors one at a time; tensor rules (:func:`add_iclight_offset`, :func:`position_table_for`) are
per-key functions shared by the in-memory merge and the streaming loader.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from ..errors import WeightFormatError
from ..models.configs import ANIMATEDIFF_V1, ANIMATEDIFF_V2, ANIMATEDIFF_V3, RELIGHTVID, MotionVariant
from .detect import MOTION_MARKER, Detection, WeightFormat, detect_format
from .validate import require_format

logger = logging.getLogger(__name__)

KeyMap = dict[str, str]  # our key -> key in the source

CONV_IN_WEIGHT = "conv_in.weight"
POSITION_ENCODING_SUFFIX = "pos_encoder.pe"
# diffusers' LDM converter only reads the block layout from the config.
SD15_CONVERSION_CONFIG = {"layers_per_block": 2}
MOTION_FORMATS = {
    WeightFormat.RELIGHTVID_MOTION: RELIGHTVID,
    WeightFormat.RELIGHTVID_SPACE_UNET: RELIGHTVID,
    WeightFormat.ANIMATEDIFF_V1: ANIMATEDIFF_V1,
    WeightFormat.ANIMATEDIFF_V2: ANIMATEDIFF_V2,
    WeightFormat.ANIMATEDIFF_V3: ANIMATEDIFF_V3,
}


def is_motion_key(key: str) -> bool:
    return MOTION_MARKER in key


def ldm_to_diffusers_key_map(ldm_keys: list[str]) -> KeyMap:
    """diffusers key → LDM key for SD1.5 U-Net keys given without prefix (``input_blocks.…``).

    Runs diffusers' own single-file converter on a dict whose values are the key names, so the
    conversion is exactly diffusers' and no tensor is touched.
    """
    # diffusers' single-file module costs seconds to import: only conversions load it.
    from diffusers.loaders.single_file_utils import LDM_UNET_KEY, convert_ldm_unet_checkpoint

    names = {LDM_UNET_KEY + key: key for key in ldm_keys}
    converted = convert_ldm_unet_checkpoint(names, SD15_CONVERSION_CONFIG)
    return {ours: source for ours, source in converted.items() if source is not None}


def spatial_key_map(detection: Detection, source_keys: list[str]) -> KeyMap:
    """Our spatial (non-motion) key → source key, for diffusers- or LDM-named U-Nets with any prefix."""
    prefix = detection.prefix
    body = [key[len(prefix) :] for key in source_keys if key.startswith(prefix) and not is_motion_key(key)]
    if detection.naming == "ldm":
        return {ours: prefix + ldm for ours, ldm in ldm_to_diffusers_key_map(body).items()}
    return {key: prefix + key for key in body}


def motion_key_map(detection: Detection, source_keys: list[str]) -> KeyMap:
    """Our motion-module key → source key (strips the ``unet.`` prefix of RelightVid files)."""
    prefix = detection.prefix
    return {key[len(prefix) :]: key for key in source_keys if key.startswith(prefix) and is_motion_key(key)}


def motion_variant(detection: Detection) -> MotionVariant:
    """The network behaviour a motion-module file expects."""
    return MOTION_FORMATS[detection.format]


def add_iclight_offset(key: str, base: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """IC-Light merge of one tensor, in fp32: ``base + offset``.

    ``conv_in.weight`` is first widened from 4 to 12 input channels with zeros, so its new channels
    hold the offset alone (docs/official_code.md §b.6–7; identical to IC-Light's own recipe).
    """
    merged = base.to(torch.float32, copy=True)
    if key == CONV_IN_WEIGHT and base.shape[1] < offset.shape[1]:
        widened = torch.zeros(offset.shape, dtype=torch.float32)
        widened[:, : base.shape[1]] = merged
        merged = widened
    if merged.shape != offset.shape:
        raise WeightFormatError(
            f"IC-Light offset for {key} has shape {tuple(offset.shape)} but the base U-Net's is {tuple(base.shape)}"
        )
    return merged.add_(offset.to(torch.float32))


def position_table_for(shape: tuple[int, ...]) -> torch.Tensor:
    """The model's own sinusoid for a ``pos_encoder.pe`` entry; checkpoint values are discarded (§b.4)."""
    from ..models.motion import sinusoidal_position_table  # the models import diffusers: load them when used

    return sinusoidal_position_table(shape[1], shape[2])


def motion_tensor(key: str, stored: torch.Tensor) -> torch.Tensor:
    """A motion-module tensor as the official loader uses it: stored values, ``pe`` recomputed (fp32)."""
    if key.endswith(POSITION_ENCODING_SUFFIX):
        return position_table_for(tuple(stored.shape))
    return stored


def shapes_of(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def merge_official_weights(
    sd_unet: Mapping[str, torch.Tensor],
    motion: Mapping[str, torch.Tensor],
    iclight_offset: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """RelightVid's official weight merge, on state dicts (pure; inputs are not modified).

    Args:
        sd_unet: SD1.5 U-Net weights, diffusers or LDM keys (any container prefix).
        motion: temporal weights: ``relvid_mm_sd15_fbc`` (``unet.`` prefix) or AnimateDiff v1/v2.
        iclight_offset: IC-Light fbc offsets, diffusers or LDM keys.

    Returns:
        Our key → fp32 tensor: ``sd + offset`` for every spatial key (conv_in widened to 12 channels),
        the motion tensors, and ``pe`` replaced by the model's own sinusoid — bit-identical to the
        official ``initialize_unet`` (golden ``tiny_unet3d_state_dict``).

    Raises:
        WeightFormatError: an input is not of the kind its argument expects, or keys do not line up.
    """
    base_detection = require_format(detect_format(shapes_of(sd_unet)), {WeightFormat.SD15_UNET}, "sd_unet", "base")
    offset_detection = require_format(
        detect_format(shapes_of(iclight_offset)), {WeightFormat.ICLIGHT_FBC}, "iclight_offset", "iclight"
    )
    motion_detection = require_format(detect_format(shapes_of(motion)), set(MOTION_FORMATS), "motion", "motion")

    base_map = spatial_key_map(base_detection, list(sd_unet))
    offset_map = spatial_key_map(offset_detection, list(iclight_offset))
    missing = sorted(set(base_map) - set(offset_map))
    if missing:
        raise WeightFormatError(
            f"iclight_offset has no offset for {len(missing)} U-Net keys (first: {missing[:3]}); "
            "expected one for every SD1.5 U-Net key"
        )
    merged = {key: add_iclight_offset(key, sd_unet[source], iclight_offset[offset_map[key]]) for key, source in base_map.items()}
    merged.update(
        {
            key: motion_tensor(key, motion[source]).to(torch.float32, copy=True)
            for key, source in motion_key_map(motion_detection, list(motion)).items()
        }
    )
    return merged
