"""The custom socket types that flow between RelightVid nodes, and what each carries.

============================ ===========================================================================
socket type                  payload
============================ ===========================================================================
``RELIGHTVID_UNET``          :class:`SpatialWeights`: the inflated fbc U-Net's spatial weights (SD1.5 base
                             + IC-Light fbc offsets, conv_in widened to 12), its config and dtype
``RELIGHTVID_MODEL``         a ComfyUI ``ModelPatcher`` whose ``.model.diffusion_model`` is the complete
                             :class:`~relightvid_core.RelightVidUNet` (spatial + temporal weights)
``RELIGHTVID_FOREGROUND``    :class:`Foreground`: fitted frames, prepared masks, gray fill and the VAE, so
                             the sampler can encode the foreground once per IIE brightness factor
``RELIGHTVID_BACKGROUND``    :class:`Background`: per-frame plates at the foreground's size, or none (the
                             trained zero-latent "no background" condition)
``RELIGHTVID_TEXT``          :class:`TextConditioning`: prompt and uncond embeddings of equal length
============================ ===========================================================================

Payloads are frozen and their tensors are never written to after creation: ComfyUI caches node outputs
and may hand one output to several nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

UNET_TYPE = "RELIGHTVID_UNET"
MODEL_TYPE = "RELIGHTVID_MODEL"
FOREGROUND_TYPE = "RELIGHTVID_FOREGROUND"
BACKGROUND_TYPE = "RELIGHTVID_BACKGROUND"
TEXT_TYPE = "RELIGHTVID_TEXT"


@dataclass(frozen=True)
class SpatialWeights:
    """Spatial weights of the fbc U-Net.

    Attributes:
        state_dict: our spatial key → tensor (``dtype``, on the offload device).
        config: the U-Net config (official keys) the weights fit.
        dtype: the weights' dtype.
        description: where they came from, for messages and logs.
    """

    state_dict: Mapping[str, torch.Tensor]
    config: dict[str, Any]
    dtype: torch.dtype
    description: str


@dataclass(frozen=True)
class Foreground:
    """The subject clip, ready for the sampler.

    Attributes:
        frames: (T, H, W, 3) float32 RGB in 0..1 at the output size (H, W multiples of 8), not gray-filled.
        masks: (T, H, W) float32 in 0..1 (1 = subject), grown/feathered, or None: the whole frame is subject.
        gray: fill outside the mask, in 0..1.
        vae: the ComfyUI VAE the sampler encodes with (any object with ``encode(IMAGE) -> latents``).
    """

    frames: torch.Tensor
    masks: torch.Tensor | None
    gray: float
    vae: Any

    @property
    def count(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]


@dataclass(frozen=True)
class Background:
    """Background plates matched to a foreground.

    Attributes:
        frames: (T, H, W, 3) float32 RGB in 0..1, or None: no background, encoded as zero latents (the
            condition training used for an all-black background, UPSTREAM.md §d).
        count, height, width: the clip the plates were made for.
        description: what made them (for messages).
    """

    frames: torch.Tensor | None
    count: int
    height: int
    width: int
    description: str


@dataclass(frozen=True)
class TextConditioning:
    """Text embeddings for the three guidance branches.

    Attributes:
        cond: (1, tokens, 768) prompt embeddings.
        uncond: (1, tokens, 768) embeddings of the uncond (by default the empty prompt), same token count.
    """

    cond: torch.Tensor
    uncond: torch.Tensor
