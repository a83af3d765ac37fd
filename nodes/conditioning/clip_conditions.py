"""What a RelightVid MODEL is conditioned on, in ComfyUI's CONDITIONING form: the fg ‖ bg image of every frame
on the prompt and on the empty prompt.

This module talks to ComfyUI: it reads and writes CONDITIONING lists (with ComfyUI's ``node_helpers``, imported
where it is used) and encodes with the ComfyUI VAE a Foreground carries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...relightvid_core.errors import InputError
from ...relightvid_core.sampling.iie import iie_image_conditions
from ...relightvid_core.vae import LATENT_CHANNELS, LATENT_FACTOR, SD_LATENT_SCALE
from ...relightvid_core.values import counted
from .. import host
from ..model_patch.iclight import RELIGHTVID_IMAGE_KEY
from ..payloads import Background, Foreground


def check_pairing(foreground: Foreground, background: Background) -> None:
    """The background must have been made for this foreground's frame count and size.

    Raises:
        InputError: naming both counts or sizes.
    """
    if background.count != foreground.count:
        raise InputError(
            f"the background has {counted(background.count, 'frame')} but the foreground has {foreground.count}; make "
            "the background from the same RelightVid Foreground node that feeds the sampler."
        )
    if (background.height, background.width) != (foreground.height, foreground.width):
        raise InputError(
            f"the background is {background.width}x{background.height} but the foreground is "
            f"{foreground.width}x{foreground.height}; make both from the same RelightVid Foreground node."
        )


def background_latents(foreground: Foreground, background: Background) -> torch.Tensor:
    """(T, 4, h, w) scaled latents; no background is the trained zero latent (docs/official_code.md §d)."""
    if background.frames is None:
        latent_size = (
            foreground.height // LATENT_FACTOR,
            foreground.width // LATENT_FACTOR,
        )
        return torch.zeros(foreground.count, LATENT_CHANNELS, *latent_size)
    return host.encode_frames(foreground.vae, background.frames)


def clip_images(foreground: Foreground, background: Background, factors: Sequence[float]) -> list[torch.Tensor]:
    """One fg ‖ bg image condition per foreground brightness factor, as ComfyUI latents.

    The library's conditions (``iie_image_conditions``, as the command line samples with), unscaled as VAE
    Encode returns latents: the MODEL scales them with its latent format.

    Returns:
        one (F, 8, h, w) float32 CPU tensor per factor, channels fg latent(4) ‖ bg latent(4).

    Raises:
        InputError: a background made for another foreground (frame count or size).
    """
    check_pairing(foreground, background)
    conditions = iie_image_conditions(
        foreground.frames,
        foreground.masks,
        factors,
        lambda frames: host.encode_frames(foreground.vae, frames),
        background_latents(foreground, background),
        foreground.gray,
    )
    return [condition[0] / SD_LATENT_SCALE for condition in conditions]


def check_text_conditioning(conditioning, name: str) -> None:
    """A CONDITIONING (a non-empty list of [embedding, extras] pairs) that carries no RelightVid image yet.

    Raises:
        InputError: naming the input.
    """
    if not isinstance(conditioning, (list, tuple)) or not conditioning:
        raise InputError(f"{name} must be the CONDITIONING of a CLIP Text Encode node.")
    for entry in conditioning:
        if len(entry) != 2 or not isinstance(entry[0], torch.Tensor) or not isinstance(entry[1], dict):
            raise InputError(f"{name} must be the CONDITIONING of a CLIP Text Encode node.")
        if RELIGHTVID_IMAGE_KEY in entry[1]:
            raise InputError(
                f"{name} already carries a RelightVid image; connect the CLIP Text Encode output, not the output "
                "of a RelightVid Conditioning node."
            )


def with_image(conditioning, image: torch.Tensor) -> list:
    """A copy of ``conditioning`` whose every entry carries ``image`` (the input is not changed).

    Raises:
        InputError: outside ComfyUI (its ``node_helpers`` could not be imported).
    """
    try:
        import node_helpers
    except ImportError as error:
        raise InputError(
            "RelightVid's conditioning runs only inside ComfyUI (node_helpers could not be imported)."
        ) from error

    return node_helpers.conditioning_set_values(conditioning, {RELIGHTVID_IMAGE_KEY: image})


def empty_clip_latent(image: torch.Tensor) -> torch.Tensor:
    """Zero latents of the clip's size (F, 4, h, w), to sample from pure noise."""
    return torch.zeros(image.shape[0], LATENT_CHANNELS, *image.shape[2:])
