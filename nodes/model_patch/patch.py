"""RelightVid inside ComfyUI's own sampling: an SD1.5 MODEL patched into RelightVid's video U-Net.

This module talks to ComfyUI: it builds the patched clone through ModelPatcher's public API (weight and
object patches, additional models, injections, wrappers). ComfyUI's SD1.5 U-Net stays the network; a clone
of the MODEL gets

* IC-Light's fbc offsets and the image condition (:mod:`.iclight`);
* the temporal modules, built by the library (``relightvid_core.models``, the same modules as
  ``RelightVidUNet``) and owned by their own ModelPatcher that model management loads and offloads with the
  U-Net (plain torch layers, so they load whole: about 0.4 GB at fp16, while the U-Net's own layers may
  load partially on low VRAM), inserted while the model is loaded (:mod:`.temporal`);
* clip-wide GroupNorm in the ResNets and the output norm (RelightVid and AnimateDiff v1 normalise over all
  frames of a clip, docs/official_code.md §a.1);
* three wrappers: the clip length of every U-Net call (batch / number of conds), a check of the conds
  before sampling, and the animated preview of the clip.
"""

from __future__ import annotations

import logging

from ...relightvid_core.errors import InputError, WeightFormatError
from ...relightvid_core.models.configs import FULL_FBC
from ...relightvid_core.weights import load_motion_weights
from .. import host
from ..previews.clip_preview import ClipPreview
from .iclight import (
    UNET_PREFIX,
    base_unet_shapes,
    iclight_model,
    is_iclight_model,
    override_patches,
    unet_shapes,
)
from .temporal import Injection, build_temporal_modules, clip_length, frames_per_clip
from .wiring import check_clip_conds

try:
    import comfy.model_patcher
    import comfy.patcher_extension
except ImportError:  # the pack still imports (and its other nodes work) outside ComfyUI
    comfy = None

logger = logging.getLogger(__name__)

PATCH_KEY = "relightvid"  # our entries among the clone's injections, wrappers and additional models


def require_comfy(node: str) -> None:
    if comfy is None:
        raise InputError(f"{node} runs only inside ComfyUI (comfy could not be imported).")


def is_relightvid_model(model) -> bool:
    """True for a MODEL with RelightVid's temporal modules."""
    return bool(model.get_injections(PATCH_KEY))


def clip_length_wrapper(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
    """A DIFFUSION_MODEL wrapper: the clip length of this U-Net call, for its temporal layers and norms only."""
    with frames_per_clip(clip_length(x.shape[0], transformer_options)):
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)


@host.reports_errors
def check_conds_wrapper(executor, noise, *args, **kwargs):
    """An OUTER_SAMPLE wrapper that refuses conds the RelightVid MODEL cannot use, before ComfyUI encodes them
    (the guider is the executor's ``class_obj``). It wraps the whole sampling run, so every library error raised
    while a core sampler node runs the patched MODEL reaches ComfyUI as the pack reports its own."""
    check_clip_conds(executor.class_obj.original_conds, noise.shape[0])
    return executor(noise, *args, **kwargs)


def clip_preview_wrapper(executor, guider, sigmas, extra_args, callback, *args, **kwargs):
    """A SAMPLER_SAMPLE wrapper that plays the frames of each step's x̂₀ in the node's preview.

    ComfyUI's own step callback still runs (progress bar, Cancel, its first-frame preview); the clip's frames
    are the latent batch, which is what its callback receives as x̂₀.
    """
    if callback is None:
        return executor(guider, sigmas, extra_args, callback, *args, **kwargs)
    with ClipPreview(guider.model_patcher.load_device) as preview:

        def step_callback(step, x0, x, total_steps):
            callback(step, x0, x, total_steps)
            preview.show(x0)

        return executor(guider, sigmas, extra_args, step_callback, *args, **kwargs)


def compute_dtype(model):
    """The dtype the U-Net computes in (fp8 weights are cast to it per layer)."""
    return model.model.manual_cast_dtype or model.model.get_dtype()


def iclight_unet(model, iclight_path: str):
    """A clone of the SD1.5 ``model`` with IC-Light's offsets, its image condition and the check of the conds
    it is sampled with; ``model`` is unchanged.

    Raises:
        WeightFormatError: the MODEL is not a plain SD1.5 MODEL, or the file is not IC-Light's fbc offsets.
    """
    # The connected MODEL is checked first, so one of another family is named as such with or without ComfyUI.
    base_shapes = base_unet_shapes(model)
    require_comfy("Load RelightVid U-Net")
    patched = iclight_model(model, iclight_path, base_shapes)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, PATCH_KEY, check_conds_wrapper)
    return patched


def temporal_model(model, motion_path: str):
    """A clone of an IC-Light MODEL (:func:`.iclight.iclight_model`) with RelightVid's temporal modules, clip-wide
    norms and wrappers; ``model`` is unchanged.

    Raises:
        WeightFormatError: the MODEL carries no IC-Light offsets or already has temporal modules, or the file is
            not a temporal-weight file.
    """
    require_comfy("Load RelightVid Temporal Weights")
    if is_relightvid_model(model):
        raise WeightFormatError(
            "the connected MODEL already has RelightVid's temporal modules; connect it to a sampler."
        )
    if not is_iclight_model(model):
        raise WeightFormatError(
            "the connected MODEL carries no IC-Light offsets; connect the MODEL of Load RelightVid U-Net, or turn a "
            "plain SD1.5 MODEL into RelightVid with Apply RelightVid."
        )
    motion = load_motion_weights(
        motion_path,
        dtype=compute_dtype(model),
        device=model.offload_device,
        config=FULL_FBC,
    )
    temporal = build_temporal_modules(motion, FULL_FBC)

    patched = model.clone()
    if motion.spatial_overrides:
        base_shapes = {key[len(UNET_PREFIX) :]: shape for key, shape in unet_shapes(model).items()}
        patched.add_patches(override_patches(motion.spatial_overrides, base_shapes))
    temporal_patcher = comfy.model_patcher.ModelPatcher(
        temporal, load_device=model.load_device, offload_device=model.offload_device
    )
    patched.set_additional_models(PATCH_KEY, [temporal_patcher])
    injection = Injection(temporal, clip_wide_norm=not motion.variant.inflated_groupnorm)
    patched.set_injections(
        PATCH_KEY,
        [comfy.patcher_extension.PatcherInjection(injection.inject, injection.eject)],
    )
    wrappers = comfy.patcher_extension.WrappersMP
    patched.add_wrapper_with_key(wrappers.DIFFUSION_MODEL, PATCH_KEY, clip_length_wrapper)
    patched.add_wrapper_with_key(wrappers.SAMPLER_SAMPLE, PATCH_KEY, clip_preview_wrapper)
    logger.info(
        "RelightVid added temporal weights %s (%s)",
        motion.source_name,
        motion.variant.name,
    )
    return patched


def apply_relightvid(model, iclight_path: str, motion_path: str):
    """A clone of the SD1.5 ``model`` patched into RelightVid's video U-Net (:func:`iclight_unet`, then
    :func:`temporal_model`); ``model`` is unchanged."""
    return temporal_model(iclight_unet(model, iclight_path), motion_path)
