"""The relit clip's latents as a ComfyUI latent file (``.latent``), the format of ComfyUI's Save Latent and Load
Latent nodes: a command-line run can then be decoded, refined or compared in ComfyUI.

The file is safetensors holding ``latent_tensor``, the LATENT's ``samples`` (the VAE's latents before the SD
scaling factor, the clip's frames as the batch: ``[frames, 4, height / 8, width / 8]`` float32), and the empty
tensor ``latent_format_version_0``, which tells Load Latent that the values are unscaled (it reads a file
without it as latents times 0.18215, the first format).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from .vae import SD_LATENT_SCALE

LATENT_SUFFIXES = (".latent",)
SAMPLES_KEY = "latent_tensor"
UNSCALED_MARKER = "latent_format_version_0"


def write_latent(path: str | Path, latents: torch.Tensor) -> None:
    """Write ``latents`` — the sampler's ``[frames, 4, h, w]``, scaled by :data:`SD_LATENT_SCALE` as the U-Net
    sees them — to ``path`` as a ComfyUI latent file (unscaled, see the module docstring).

    The caller picks and checks the path (:func:`~relightvid_core.outputs.publish` writes it under a temporary
    name first)."""
    samples = (latents.detach().to("cpu", torch.float32) / SD_LATENT_SCALE).contiguous()
    save_file({SAMPLES_KEY: samples, UNSCALED_MARKER: torch.tensor([])}, str(path))
