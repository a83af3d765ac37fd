"""Tiny synthetic weight sets in every layout users bring, built in code (no files are shipped).

The LDM names below are written out independently of diffusers' converter, so loading them through
that converter is a real round-trip check.
"""

from __future__ import annotations

import re

import torch

from relightvid_core import TINY, RelightVidUNet
from relightvid_core.models.configs import ANIMATEDIFF_V2, config_for_variant
from relightvid_core.models.random_init import randomize_weights

LAYERS = 2  # layers_per_block of SD1.5 and of TINY
RESNET_LDM_NAMES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
FIXED_LDM_NAMES = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
UP_BLOCKS_WITH_ATTENTION = {1, 2, 3}


def _resnet_tail(tail: str) -> str:
    head, _, rest = tail.partition(".")
    return f"{RESNET_LDM_NAMES[head]}.{rest}"


def diffusers_to_ldm_key(key: str) -> str:
    """SD1.5 diffusers U-Net key → LDM key (``input_blocks.…``), for the 4-level, 2-layer layout."""
    for diffusers_name, ldm_name in FIXED_LDM_NAMES.items():
        if key.startswith(diffusers_name + "."):
            return ldm_name + key[len(diffusers_name) :]
    if match := re.fullmatch(r"down_blocks\.(\d)\.resnets\.(\d)\.(.+)", key):
        i, j, tail = int(match[1]), int(match[2]), match[3]
        return f"input_blocks.{3 * i + j + 1}.0.{_resnet_tail(tail)}"
    if match := re.fullmatch(r"down_blocks\.(\d)\.attentions\.(\d)\.(.+)", key):
        i, j, tail = int(match[1]), int(match[2]), match[3]
        return f"input_blocks.{3 * i + j + 1}.1.{tail}"
    if match := re.fullmatch(r"down_blocks\.(\d)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{3 * (int(match[1]) + 1)}.0.op.{match[2]}"
    if match := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", key):
        return f"middle_block.{2 * int(match[1])}.{_resnet_tail(match[2])}"
    if match := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{match[1]}"
    if match := re.fullmatch(r"up_blocks\.(\d)\.resnets\.(\d)\.(.+)", key):
        i, j, tail = int(match[1]), int(match[2]), match[3]
        return f"output_blocks.{3 * i + j}.0.{_resnet_tail(tail)}"
    if match := re.fullmatch(r"up_blocks\.(\d)\.attentions\.(\d)\.(.+)", key):
        i, j, tail = int(match[1]), int(match[2]), match[3]
        return f"output_blocks.{3 * i + j}.1.{tail}"
    if match := re.fullmatch(r"up_blocks\.(\d)\.upsamplers\.0\.conv\.(.+)", key):
        i = int(match[1])
        slot = 2 if i in UP_BLOCKS_WITH_ATTENTION else 1
        return f"output_blocks.{3 * i + 2}.{slot}.conv.{match[2]}"
    raise KeyError(f"no LDM name for {key}")


def to_ldm(state_dict: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + diffusers_to_ldm_key(key): value for key, value in state_dict.items()}


def tiny_network(seed: int, config: dict | None = None, in_channels: int = 4) -> RelightVidUNet:
    """A tiny U-Net with every weight random (motion output projections included)."""
    return randomize_weights(RelightVidUNet.from_config({**(config or TINY), "in_channels": in_channels}), seed)


def split(model: RelightVidUNet) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(spatial, motion) halves of a model's state dict, fp16 like the released files."""
    state = {key: value.detach().contiguous().half() for key, value in model.state_dict().items()}
    spatial = {key: value for key, value in state.items() if ".motion_modules." not in key}
    motion = {key: value for key, value in state.items() if ".motion_modules." in key}
    return spatial, motion


def tiny_official_set(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """sd (SD1.5 U-Net), iclight (fbc offsets, 12-channel conv_in) and motion (``unet.`` prefix) dicts."""
    sd, motion = split(tiny_network(seed))
    offsets, _ = split(tiny_network(seed + 1, in_channels=12))
    offsets = {key: value * 0.05 for key, value in offsets.items()}
    return {"sd": sd, "iclight": offsets, "motion": {"unet." + key: value for key, value in motion.items()}}


def tiny_animatediff_v2(seed: int = 0) -> dict[str, torch.Tensor]:
    """Unprefixed motion modules with a mid-block module, as ``mm_sd_v15_v2.ckpt``."""
    _, motion = split(tiny_network(seed, config_for_variant(TINY, ANIMATEDIFF_V2)))
    return motion


def ldm_checkpoint_extras() -> dict[str, torch.Tensor]:
    """Non-U-Net entries of a single-file SD1.5 checkpoint (VAE, CLIP), which loaders must ignore."""
    return {
        "first_stage_model.decoder.conv_in.weight": torch.zeros(8, 4, 3, 3),
        "cond_stage_model.transformer.text_model.embeddings.position_ids": torch.zeros(1, 77),
    }
