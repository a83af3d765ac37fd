"""IC-Light's fbc U-Net as patches of a ComfyUI SD1.5 MODEL: the offsets and the foreground ‖ background condition.

This module talks to ComfyUI: it reads a MODEL's weights through its ModelPatcher, writes IC-Light's
offsets as ModelPatcher weight patches, and builds the concat condition as one of ComfyUI's ``comfy.conds``.

* The offsets are "diff" patches (conv_in padded from 4 to 12 input channels), so LoRAs applied before,
  fp8 weights and low-VRAM loading compose with them as with any LoRA.
* The foreground ‖ background latents are the model's concat condition: an object patch of ``extra_conds``
  reads :data:`RELIGHTVID_IMAGE_KEY` from each conditioning entry; an entry without it gets zeros, the
  official "no image" condition of the unconditional branch (docs/official_code.md §d).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...relightvid_core.errors import InputError, WeightFormatError
from ...relightvid_core.models.configs import FULL_FBC
from ...relightvid_core.weights import detect_format, expected_shapes, open_source
from ...relightvid_core.weights.convert import (
    is_motion_key,
    ldm_to_diffusers_key_map,
    spatial_key_map,
)
from ...relightvid_core.weights.detect import WeightFormat
from ...relightvid_core.weights.validate import check_shapes, require_format

try:
    import comfy.conds
except ImportError:  # the pack still imports (and its other nodes work) outside ComfyUI
    comfy = None

# CONTRACT with the conditioning nodes: a conditioning entry's extras may carry this key, a tensor
# [F, 8, h, w] of RAW latents as VAE Encode returns them (unscaled), foreground ‖ background on channels.
RELIGHTVID_IMAGE_KEY = "relightvid_image"
IMAGE_CHANNELS = 8  # foreground (4) ‖ background (4) latents
UNET_PREFIX = "diffusion_model."  # the U-Net keys of a MODEL


@dataclass(frozen=True)
class ImageConcatConds:
    """``extra_conds`` of the patched model: the original conds plus ``c_concat`` = scaled fg ‖ bg latents."""

    original: object
    latent_format: object

    def __call__(self, **kwargs):
        out = self.original(**kwargs)
        noise = kwargs["noise"]
        image = kwargs.get(RELIGHTVID_IMAGE_KEY)
        if image is None:
            # The dropped condition: zeros, in training and in the official unconditional branch.
            concat = torch.zeros((noise.shape[0], IMAGE_CHANNELS, *noise.shape[2:]), dtype=torch.float32)
        else:
            expected = (noise.shape[0], IMAGE_CHANNELS, *noise.shape[2:])
            if tuple(image.shape) != expected:
                raise InputError(
                    f"the RelightVid image condition has shape {tuple(image.shape)} (frames, channels, h, w) but the "
                    f"latent to sample is {tuple(noise.shape)}, so it must be {expected}: give the foreground and "
                    "background as many frames as the latent, at the latent's size."
                )
            concat = self.latent_format.process_in(image.to(torch.float32))
        out["c_concat"] = comfy.conds.CONDNoiseShape(concat.to(kwargs["device"]))
        return out


def is_iclight_model(model) -> bool:
    """True for a MODEL that :func:`iclight_model` made (its ``extra_conds`` builds the image condition)."""
    return isinstance(model.get_model_object("extra_conds"), ImageConcatConds)


def _spatial(shapes: dict) -> dict:
    return {key: shape for key, shape in shapes.items() if not is_motion_key(key)}


def unet_shapes(model) -> dict[str, tuple[int, ...]]:
    """MODEL key (``diffusion_model.…``) → shape of the U-Net's own weights.

    Shapes come from the original weights (the patcher's backup while a patched clone is loaded), so a MODEL
    whose U-Net another RelightVid clone currently holds widened still reads as the SD1.5 it is.
    """
    return {key: tuple(entry[0][0].shape) for key, entry in model.get_key_patches(UNET_PREFIX).items()}


def base_unet_shapes(model) -> dict[str, tuple[int, ...]]:
    """LDM key (no prefix) → shape of the MODEL's U-Net weights, after checking it is a plain SD1.5 U-Net.

    Raises:
        WeightFormatError: naming what the MODEL is (SDXL, SD2, an inpainting U-Net, a RelightVid MODEL ...).
    """
    if is_iclight_model(model):
        raise WeightFormatError(
            "the connected MODEL already carries IC-Light's offsets (it comes from a RelightVid loader); connect the "
            "plain SD1.5 MODEL instead."
        )
    shapes = unet_shapes(model)
    name = f"the connected MODEL (ComfyUI: {type(model.model.model_config).__name__})"
    detection = require_format(detect_format(shapes), {WeightFormat.SD15_UNET}, name, "base")
    ours = spatial_key_map(detection, list(shapes))
    check_shapes(
        {key: shapes[source] for key, source in ours.items()},
        _spatial(expected_shapes({**FULL_FBC, "in_channels": 4})),
        name,
        "SD1.5 U-Net",
    )
    return {key[len(UNET_PREFIX) :]: shape for key, shape in shapes.items()}


def iclight_patches(path: str, base_shapes: dict) -> dict:
    """IC-Light fbc offsets as ModelPatcher "diff" patches on the U-Net's LDM keys; conv_in pads to 12 channels.

    Raises:
        WeightFormatError: the file is not the fbc offset file (e.g. IC-Light fc) or does not fit SD1.5.
    """
    source = open_source(path)
    try:
        shapes = source.shapes()
        detection = require_format(detect_format(shapes), {WeightFormat.ICLIGHT_FBC}, source.name, "iclight")
        offsets = spatial_key_map(detection, list(shapes))
        check_shapes(
            {key: shapes[name] for key, name in offsets.items()},
            _spatial(expected_shapes(FULL_FBC)),
            source.name,
            "IC-Light fbc offsets",
        )
        patches = {}
        for ours, ldm in ldm_to_diffusers_key_map(list(base_shapes)).items():
            offset = source.read(offsets[ours])
            pad = tuple(offset.shape) != base_shapes[ldm]  # conv_in: 4 → 12 input channels, new ones zero
            patches[UNET_PREFIX + ldm] = ("diff", (offset, {"pad_weight": pad}))
        return patches
    finally:
        source.close()


def override_patches(spatial_overrides: dict, base_shapes: dict) -> dict:
    """Spatial tensors a full-U-Net temporal file carries (the HF Space's), as "set" patches after the merge."""
    to_ldm = ldm_to_diffusers_key_map(list(base_shapes))
    return {UNET_PREFIX + to_ldm[key]: ("set", (value,)) for key, value in spatial_overrides.items()}


def iclight_model(model, iclight_path: str, base_shapes: dict):
    """A clone of the SD1.5 ``model`` (its U-Net's shapes ``base_shapes``, from :func:`base_unet_shapes`) with
    IC-Light's fbc offsets and the image condition; ``model`` is unchanged.

    Raises:
        WeightFormatError: the file is not IC-Light's fbc offsets.
    """
    patched = model.clone()
    patched.add_patches(iclight_patches(iclight_path, base_shapes))
    patched.add_object_patch(
        "extra_conds",
        ImageConcatConds(
            model.get_model_object("extra_conds"),
            model.get_model_object("latent_format"),
        ),
    )
    return patched
