"""Named U-Net configurations, in the official config's vocabulary (docs/official_code.md §a.2)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

# AnimateDiff "Vanilla" motion-module settings that RelightVid ships with (configs/inference_fbc.yaml).
RELIGHTVID_MOTION_KWARGS: dict[str, Any] = {
    "num_attention_heads": 8,
    "num_transformer_block": 1,
    "attention_block_types": ["Temporal_Self", "Temporal_Self"],
    "temporal_position_encoding": True,
    "temporal_position_encoding_max_len": 32,
    "temporal_attention_dim_div": 1,
}

# The released network after loading: IC-Light fbc widened conv_in to 12 channels
# (noisy | foreground | background latents, 4 each).
FULL_FBC: dict[str, Any] = {
    "in_channels": 12,
    "out_channels": 4,
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
    "downsample_padding": 1,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-5,
    "norm_num_groups": 32,
    "sample_size": 64,
    "use_motion_module": True,
    "motion_module_resolutions": [1, 2, 4, 8],
    "motion_module_mid_block": False,
    "motion_module_decoder_only": False,
    "motion_module_type": "Vanilla",
    "motion_module_kwargs": RELIGHTVID_MOTION_KWARGS,
}

# The golden tests' tiny network (shared/reference/golden/tiny_unet3d_config.json): the full
# block pattern with 32 channels everywhere (the motion GroupNorm's 32 groups are hard-wired).
TINY: dict[str, Any] = {
    **FULL_FBC,
    "attention_head_dim": 4,
    "block_out_channels": [32, 32, 32, 32],
    "cross_attention_dim": 32,
    "norm_num_groups": 8,
    "sample_size": 16,
}

CONFIGS: dict[str, dict[str, Any]] = {"full_fbc": FULL_FBC, "tiny": TINY}


def get_config(name: str, **overrides: Any) -> dict[str, Any]:
    """Return a deep copy of a named config with ``overrides`` applied.

    Raises:
        ValueError: ``name`` is not one of :data:`CONFIGS`.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown config name {name!r}; expected one of {sorted(CONFIGS)}")
    config = copy.deepcopy(CONFIGS[name])
    config.update(copy.deepcopy(overrides))
    return config


@dataclass(frozen=True)
class MotionVariant:
    """Network behaviour that differs between the motion-module checkpoints (docs/official_code.md §b table).

    Attributes:
        name: short id used in logs and file metadata.
        mid_block: a motion module in the mid block (AnimateDiff v2/v3).
        position_encoding_length: frames the temporal position encoding covers.
        inflated_groupnorm: per-frame GroupNorm in the ResNets and output norm (AnimateDiff v2/v3);
            RelightVid and AnimateDiff v1 normalise over all frames of a clip.
    """

    name: str
    mid_block: bool
    position_encoding_length: int
    inflated_groupnorm: bool


RELIGHTVID = MotionVariant("relightvid", mid_block=False, position_encoding_length=32, inflated_groupnorm=False)
ANIMATEDIFF_V1 = MotionVariant("animatediff_v1", mid_block=False, position_encoding_length=24, inflated_groupnorm=False)
ANIMATEDIFF_V2 = MotionVariant("animatediff_v2", mid_block=True, position_encoding_length=32, inflated_groupnorm=True)
ANIMATEDIFF_V3 = MotionVariant("animatediff_v3", mid_block=False, position_encoding_length=32, inflated_groupnorm=True)
MOTION_VARIANTS = {
    variant.name: variant for variant in (RELIGHTVID, ANIMATEDIFF_V1, ANIMATEDIFF_V2, ANIMATEDIFF_V3)
}


def config_for_variant(config: dict[str, Any], variant: MotionVariant) -> dict[str, Any]:
    """A copy of ``config`` whose motion-module settings follow ``variant``."""
    config = copy.deepcopy(config)
    config["motion_module_mid_block"] = variant.mid_block
    config["use_inflated_groupnorm"] = variant.inflated_groupnorm
    config["motion_module_kwargs"] = {
        **config.get("motion_module_kwargs", RELIGHTVID_MOTION_KWARGS),
        "temporal_position_encoding_max_len": variant.position_encoding_length,
    }
    return config


def variant_of_config(config: dict[str, Any]) -> MotionVariant:
    """The :class:`MotionVariant` a config describes (inverse of :func:`config_for_variant`)."""
    kwargs = config.get("motion_module_kwargs") or RELIGHTVID_MOTION_KWARGS
    return next(
        (
            variant
            for variant in MOTION_VARIANTS.values()
            if variant.mid_block == bool(config.get("motion_module_mid_block", False))
            and variant.inflated_groupnorm == bool(config.get("use_inflated_groupnorm", False))
            and variant.position_encoding_length == kwargs.get("temporal_position_encoding_max_len", 32)
        ),
        MotionVariant(
            "custom",
            bool(config.get("motion_module_mid_block", False)),
            kwargs.get("temporal_position_encoding_max_len", 32),
            bool(config.get("use_inflated_groupnorm", False)),
        ),
    )
