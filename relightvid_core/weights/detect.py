"""Recognise a weight file from its key names and tensor shapes alone (values are never read).

Each format a user may bring is one :class:`WeightFormat`; :func:`detect_format` maps a key→shape table
to a :class:`Detection` (format, container prefix, naming). Formats we refuse (IC-Light fc, SDXL, SD2,
diffusers MotionAdapter) are detected too, so the error can say what the file is.

Temporal files are told apart by content: a mid-block module means AnimateDiff v2; a 24-frame position
encoding, AnimateDiff v1; keys under ``unet.`` (the attribute RelightVid's training module saved them
under), RelightVid. A file with none of these marks — no prefix, a 32-frame encoding, no mid-block
module — is laid out exactly like both RelightVid's file re-saved without its prefix and AnimateDiff v3's
``v3_sd15_mm``, whose networks normalise frames differently; it is reported as ambiguous and
:func:`resolve_motion_variant` settles it from the user's explicit choice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..errors import InputError

Shapes = Mapping[str, tuple[int, ...]]

MOTION_MARKER = ".motion_modules."
# Container prefixes, longest first: LightningModule attribute (RelightVid), LDM single-file checkpoint,
# ComfyUI's BaseModel state dict.
PREFIXES = ("unet.", "model.diffusion_model.", "diffusion_model.")
CONV_IN_KEYS = {"diffusers": "conv_in.weight", "ldm": "input_blocks.0.0.weight"}
# Text-context widths of the families we refuse (SD1.5's is 768; tiny test networks use others).
SD2_CONTEXT_DIM = 1024
SDXL_CONTEXT_DIMS = (1280, 2048)
SDXL_MARKERS = ("label_emb.0.0.weight", "add_embedding.linear_1.weight", "conditioner.embedders.")
RELIGHTVID_PREFIX = "unet."  # the official relvid_mm file's keys sit under its training module's `unet`
SD15_LATENT_CHANNELS = 4
FC_CHANNELS = 8  # IC-Light fc: noisy | foreground
FBC_CHANNELS = 12  # IC-Light fbc: noisy | foreground | background


class WeightFormat(enum.Enum):
    """What a state dict is; ``value`` is the phrase used in messages."""

    SD15_UNET = "an SD1.5 U-Net"
    ICLIGHT_FBC = "an IC-Light fbc offset (12-channel)"
    RELIGHTVID_MOTION = "RelightVid temporal weights (relvid_mm_sd15_fbc)"
    RELIGHTVID_SPACE_UNET = "the RelightVid HF Space U-Net (relvid_mm_sd15_fbc_unet)"
    ANIMATEDIFF_V1 = "AnimateDiff v1 motion modules (position encoding 24)"
    ANIMATEDIFF_V2 = "AnimateDiff v2 motion modules (with a mid-block module)"
    ANIMATEDIFF_V3 = "AnimateDiff v3 motion modules (v3_sd15_mm, per-frame GroupNorm)"
    AMBIGUOUS_MOTION = (
        "temporal weights without the 'unet.' prefix, with a 32-frame position encoding and no mid-block "
        "module, which RelightVid's relvid_mm_sd15_fbc (re-saved) and AnimateDiff v3's v3_sd15_mm both are"
    )
    RELIGHTVID_MERGED = "a merged RelightVid U-Net"
    ICLIGHT_FC = "the IC-Light fc model (foreground-only, 8-channel)"
    SDXL = "an SDXL model"
    SD2 = "an SD2.x model (1024-d text context)"
    DIFFUSERS_MOTION_ADAPTER = "a diffusers MotionAdapter"
    UNKNOWN = "not a recognised U-Net, IC-Light or motion-module file"


@dataclass(frozen=True)
class Detection:
    """A detected format and how to read its keys.

    Attributes:
        format: what the file is.
        prefix: container prefix in front of the U-Net keys ('' if none).
        naming: 'diffusers' (``down_blocks.…``) or 'ldm' (``input_blocks.…``) for the spatial keys.
        position_encoding_length: length of the motion modules' ``pe`` table, if any.
    """

    format: WeightFormat
    prefix: str = ""
    naming: str = "diffusers"
    position_encoding_length: int | None = None


def _strip_prefix(shapes: Shapes) -> tuple[str, dict[str, tuple[int, ...]]]:
    for prefix in PREFIXES:
        body = {key[len(prefix) :]: shape for key, shape in shapes.items() if key.startswith(prefix)}
        if body:
            return prefix, body
    return "", dict(shapes)


def _context_dim(body: Shapes) -> int | None:
    for key, shape in body.items():
        if key.endswith("attn2.to_k.weight") and MOTION_MARKER not in key:
            return shape[1]
    return None


def _position_encoding_length(body: Shapes) -> int | None:
    lengths = {shape[1] for key, shape in body.items() if key.endswith("pos_encoder.pe")}
    return max(lengths) if lengths else None


def _classify_motion(prefix: str, body: Shapes) -> Detection:
    motion_keys = [key for key in body if MOTION_MARKER in key]
    if not any(".temporal_transformer." in key for key in motion_keys):
        return Detection(WeightFormat.DIFFUSERS_MOTION_ADAPTER, prefix)
    length = _position_encoding_length(body)
    if any(key.startswith("mid_block.motion_modules.") for key in motion_keys):
        return Detection(WeightFormat.ANIMATEDIFF_V2, prefix, position_encoding_length=length)
    if length is not None and length < 32:
        return Detection(WeightFormat.ANIMATEDIFF_V1, prefix, position_encoding_length=length)
    if prefix == RELIGHTVID_PREFIX:
        return Detection(WeightFormat.RELIGHTVID_MOTION, prefix, position_encoding_length=length)
    return Detection(WeightFormat.AMBIGUOUS_MOTION, prefix, position_encoding_length=length)


def resolve_motion_variant(detection: Detection, variant: str | None) -> Detection:
    """Settle an ambiguous temporal file with the user's choice (a key of :data:`MOTION_VARIANT_FORMATS`).

    A file whose content already tells its variant keeps it; a choice is only needed, and only used, for
    :attr:`WeightFormat.AMBIGUOUS_MOTION`.

    Raises:
        InputError: ``variant`` is not one of :data:`MOTION_VARIANT_FORMATS`.
    """
    if variant is not None and variant not in MOTION_VARIANT_FORMATS:
        raise InputError(f"motion variant must be one of {', '.join(MOTION_VARIANT_FORMATS)}, got {variant!r}.")
    if detection.format is not WeightFormat.AMBIGUOUS_MOTION or variant is None:
        return detection
    return replace(detection, format=MOTION_VARIANT_FORMATS[variant])


def detect_format(shapes: Shapes) -> Detection:
    """Classify a state dict by its keys and shapes.

    Args:
        shapes: key → tensor shape of every entry of the file or dict.

    Returns:
        The :class:`Detection`; ``WeightFormat.UNKNOWN`` if nothing matched (never raises).
    """
    if any(marker in key for key in shapes for marker in SDXL_MARKERS):
        return Detection(WeightFormat.SDXL)
    prefix, body = _strip_prefix(shapes)
    context_dim = _context_dim(body)
    if context_dim in SDXL_CONTEXT_DIMS:
        return Detection(WeightFormat.SDXL, prefix)
    if context_dim == SD2_CONTEXT_DIM:
        return Detection(WeightFormat.SD2, prefix)

    has_motion = any(MOTION_MARKER in key for key in body)
    naming = next((name for name, key in CONV_IN_KEYS.items() if key in body), None)
    if has_motion and naming is None:
        return _classify_motion(prefix, body)
    if naming is None:
        return Detection(WeightFormat.UNKNOWN, prefix)

    in_channels = body[CONV_IN_KEYS[naming]][1]
    if has_motion and naming == "diffusers":
        motion = _classify_motion(prefix, body)
        merged = WeightFormat.RELIGHTVID_SPACE_UNET if prefix == "unet." else WeightFormat.RELIGHTVID_MERGED
        return Detection(merged, prefix, naming, motion.position_encoding_length)
    by_channels = {
        SD15_LATENT_CHANNELS: WeightFormat.SD15_UNET,
        FC_CHANNELS: WeightFormat.ICLIGHT_FC,
        FBC_CHANNELS: WeightFormat.ICLIGHT_FBC,
    }
    return Detection(by_channels.get(in_channels, WeightFormat.UNKNOWN), prefix, naming)


# The choices that settle an ambiguous temporal file (``--motion-variant`` on the command line).
MOTION_VARIANT_FORMATS = {
    "relightvid": WeightFormat.RELIGHTVID_MOTION,
    "animatediff_v3": WeightFormat.ANIMATEDIFF_V3,
}
