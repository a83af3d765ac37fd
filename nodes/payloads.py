"""The custom socket types that flow between RelightVid nodes, and what each carries.

============================ ===========================================================================
socket type                  payload
============================ ===========================================================================
``MODEL`` (ComfyUI's own)    the loaders' RelightVid MODEL: a patched clone of an SD1.5 MODEL (nodes/model_patch/)
``RELIGHTVID_FOREGROUND``    :class:`Foreground`: fitted frames, prepared masks, gray fill and the VAE, so
                             the sampler can encode the foreground once per IIE brightness factor
``RELIGHTVID_BACKGROUND``    :class:`Background`: per-frame plates at the foreground's size, or none (the
                             trained zero-latent "no background" condition)
``RELIGHTVID_TEXT``          :class:`TextConditioning`: the prompt and uncond CONDITIONING
============================ ===========================================================================

Payloads are frozen and their tensors are never written to after creation: ComfyUI caches node outputs
and may hand one output to several nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

FOREGROUND_TYPE = "RELIGHTVID_FOREGROUND"
BACKGROUND_TYPE = "RELIGHTVID_BACKGROUND"
TEXT_TYPE = "RELIGHTVID_TEXT"


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
            condition training used for an all-black background, docs/official_code.md §d).
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
    """The text of the guidance branches, as ComfyUI CONDITIONING lists (``[[embedding, extras], ...]``).

    Attributes:
        positive: the prompt (the image + text branch).
        negative: the uncond, by default the empty prompt (the image-only and unconditional branches).
    """

    positive: list
    negative: list
