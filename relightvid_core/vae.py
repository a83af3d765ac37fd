"""Chunked VAE encode/decode between IMAGE frames and SD latents, for the command line.

Official (docs/official_code.md §c): encode all frames as one batch, take the posterior **mean** (no sampling),
scale by 0.18215; decode ``latent / 0.18215`` one frame at a time and use ``.sample``. The SD VAE treats
every frame independently, so chunking changes memory only, never the result: at most ``chunk_size``
frames are on the VAE's device at once, and results move back to the input's device chunk by chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from .errors import InputError

logger = logging.getLogger(__name__)

# SD1.5's latent scaling factor (``scale_factor`` in the official config; diffusers' vae.config.scaling_factor).
SD_LATENT_SCALE = 0.18215
LATENT_FACTOR = 8  # the SD VAE downsamples by 8
LATENT_CHANNELS = 4
DEFAULT_ENCODE_CHUNK = 8
DEFAULT_DECODE_CHUNK = 1  # the official decode batch

# Called after every chunk with (frames done, frames in all): long clips show progress between VAE calls.
Progress = Callable[[int, int], None]


def _vae_place(vae: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(vae.parameters())
    return parameter.device, parameter.dtype


def _check_chunk(chunk_size: int) -> None:
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1 frame, got {chunk_size}.")


@torch.no_grad()
def encode_frames(
    vae: torch.nn.Module,
    frames: torch.Tensor,
    chunk_size: int = DEFAULT_ENCODE_CHUNK,
    black_as_zero: bool = False,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Encode frames to scaled latents (posterior mean x 0.18215).

    Args:
        vae: a diffusers ``AutoencoderKL`` (SD1.5's).
        frames: (T, H, W, 3) float RGB in 0..1, H and W multiples of 8.
        chunk_size: frames per VAE call.
        black_as_zero: if every pixel of every frame is exactly 0, return zero latents without calling
            the VAE: training encoded an all-black background clip as a zero latent, i.e. "no
            background" (docs/official_code.md §d). Off by default.
        progress: called with (frames done, frame count) after every chunk.

    Returns:
        (T, 4, H/8, W/8) float32 latents, on ``frames``' device.

    Raises:
        InputError: a wrong layout, 0 frames, sizes not multiples of 8, or chunk_size < 1.
    """
    _check_chunk(chunk_size)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise InputError(f"frames must be (T, H, W, 3) RGB with T >= 1, got shape {tuple(frames.shape)}.")
    count, height, width = frames.shape[:3]
    if height % LATENT_FACTOR or width % LATENT_FACTOR:
        raise InputError(f"frames must be multiples of {LATENT_FACTOR} pixels in size, got {width}x{height}.")
    latent_shape = (count, LATENT_CHANNELS, height // LATENT_FACTOR, width // LATENT_FACTOR)
    if black_as_zero and not frames.any():
        logger.info("all-black clip encoded as a zero latent (the trained 'no background' condition)")
        return torch.zeros(latent_shape, device=frames.device)
    device, dtype = _vae_place(vae)
    latents = torch.empty(latent_shape, device=frames.device)
    for start in range(0, count, chunk_size):
        chunk = frames[start : start + chunk_size].to(device=device, dtype=dtype)
        pixels = chunk.permute(0, 3, 1, 2) * 2.0 - 1.0
        mean = vae.encode(pixels).latent_dist.mean
        latents[start : start + chunk_size] = (mean * SD_LATENT_SCALE).to(latents.device, torch.float32)
        if progress is not None:
            progress(min(start + chunk_size, count), count)
    return latents


@torch.no_grad()
def decode_latents(
    vae: torch.nn.Module,
    latents: torch.Tensor,
    chunk_size: int = DEFAULT_DECODE_CHUNK,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Decode scaled latents to frames.

    Args:
        vae: a diffusers ``AutoencoderKL`` (SD1.5's).
        latents: (T, 4, h, w) scaled latents (as from :func:`encode_frames` or the sampler).
        chunk_size: frames per VAE call (default 1, as upstream).
        progress: called with (frames done, frame count) after every chunk.

    Returns:
        (T, 8h, 8w, 3) float32 RGB in 0..1 (IMAGE layout, clamped), on ``latents``' device.

    Raises:
        InputError: a wrong layout, 0 frames, or chunk_size < 1.
    """
    _check_chunk(chunk_size)
    if latents.ndim != 4 or latents.shape[1] != LATENT_CHANNELS or latents.shape[0] == 0:
        raise InputError(f"latents must be (T, {LATENT_CHANNELS}, h, w) with T >= 1, got shape {tuple(latents.shape)}.")
    count, _, height, width = latents.shape
    device, dtype = _vae_place(vae)
    frames = torch.empty(count, height * LATENT_FACTOR, width * LATENT_FACTOR, 3, device=latents.device)
    for start in range(0, count, chunk_size):
        chunk = latents[start : start + chunk_size].to(device=device, dtype=dtype) / SD_LATENT_SCALE
        pixels = vae.decode(chunk).sample
        images = ((pixels + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1)
        frames[start : start + chunk_size] = images.to(frames.device, torch.float32)
        if progress is not None:
            progress(min(start + chunk_size, count), count)
    return frames
