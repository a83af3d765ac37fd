"""Loader nodes: each makes a ComfyUI MODEL, patched a step further toward RelightVid's video U-Net.

* *Load RelightVid U-Net*: an SD1.5 base (a checkpoint file, or a connected MODEL) with IC-Light's fbc offsets;
* *Load RelightVid Temporal Weights*: that MODEL with RelightVid's temporal modules;
* *Apply RelightVid*: both steps at once, on a connected SD1.5 MODEL.

The patching is :mod:`..model_patch`'s; these nodes check their inputs, find the files and call it. Loading a
checkpoint file goes through ComfyUI's own loader (``comfy.sd``), imported when the node runs.
"""

from __future__ import annotations

import torch

from ...relightvid_core.errors import InputError, WeightFormatError
from .. import checks, host
from ..model_patch.patch import (
    apply_relightvid,
    iclight_unet,
    require_comfy,
    temporal_model,
)
from ..model_patch.wiring import wiring_problem
from .files import (
    BASE_FOLDERS,
    BASE_FORMATS,
    FROM_MODEL,
    ICLIGHT_SLOT,
    MOTION_SLOT,
    FileChoices,
    base_file_problem,
    file_problem,
    fitting_files,
    require_file,
    slot_choices,
    slot_path,
)

CATEGORY = "RelightVid/loaders"
# The weight dtypes ComfyUI's own diffusion-model loader offers; fp8 weights compute in ComfyUI's manual-cast dtype.
DTYPES = {
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp32": torch.float32,
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}
DTYPE_CHOICES = ("auto", *DTYPES)
ICLIGHT_TOOLTIP = (
    "IC-Light fbc offsets (iclight_sd15_fbc.safetensors, 12-channel) from models/relightvid or "
    "models/diffusion_models. The fc (8-channel) file does not work here."
)
MOTION_TOOLTIP = (
    "Temporal weights: relvid_mm_sd15_fbc.pth (or the HF Space's relvid_mm_sd15_fbc_unet.pth) from "
    "models/relightvid, or an AnimateDiff motion module from models/animatediff_models."
)


def load_checkpoint_model(path: str, name: str, dtype: str):
    """The MODEL of an SD1.5 checkpoint file, loaded by ComfyUI (no CLIP or VAE), weights in ``dtype``.

    Raises:
        WeightFormatError: ComfyUI cannot tell what model the file holds.
    """
    require_comfy("Load RelightVid U-Net")
    import comfy.sd

    options = {} if dtype == "auto" else {"dtype": DTYPES[dtype]}
    try:
        loaded = comfy.sd.load_checkpoint_guess_config(path, output_vae=False, output_clip=False, model_options=options)
    except RuntimeError as error:
        if "Could not detect model type" not in str(error):
            raise
        raise WeightFormatError(
            f"base_checkpoint {name!r} is no model ComfyUI recognises; it needs an SD1.5 checkpoint."
        ) from None
    return loaded[0]


def check_base_choice(base_checkpoint: str, dtype: str, model) -> None:
    """The base comes from exactly one place: the connected MODEL (with its own dtype) or a checkpoint file.

    Raises:
        InputError: naming the inputs that disagree.
    """
    if base_checkpoint == FROM_MODEL and model is None:
        raise InputError(
            f"base_checkpoint is {FROM_MODEL} but no MODEL is connected; connect one or pick a checkpoint file."
        )
    if base_checkpoint == FROM_MODEL and dtype != "auto":
        raise InputError(
            f"dtype {dtype} applies to a base_checkpoint file; the connected MODEL keeps the dtype of its own loader "
            "(set it there, e.g. weight_dtype of Load Diffusion Model), so leave dtype on auto."
        )
    if base_checkpoint != FROM_MODEL and model is not None:
        raise InputError(
            f"a MODEL is connected but base_checkpoint is {base_checkpoint!r}; choose {FROM_MODEL} to use the MODEL, "
            "or disconnect it to use the file."
        )


def queue_problem(node_class: type, settings, *problems: str | None) -> str | bool:
    """Each file problem found at queue time, or else the wiring problem of the prompt around the node."""
    found = checks.every_problem(*problems)
    return found if found is not True else checks.first_problem(wiring_problem(host.queued_prompt(), settings))


class RelightVidUNetLoader:
    """SD1.5 base + IC-Light fbc offsets → a MODEL (IC-Light's 12-channel U-Net)."""

    DESCRIPTION = (
        "Builds RelightVid's spatial U-Net as a MODEL: an SD1.5 base (a checkpoint file, or the MODEL of a Load "
        "Checkpoint node with any LoRA applied, never changed) plus IC-Light's fbc offsets as weight patches "
        "(iclight_sd15_fbc.safetensors in models/relightvid or models/diffusion_models). Connect it to Load "
        "RelightVid Temporal Weights."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("relightvid_unet",)
    OUTPUT_TOOLTIPS = (
        (
            "SD1.5 + IC-Light fbc as a MODEL (12-channel U-Net; frames are sampled one by one until the temporal "
            "weights are added)."
        ),
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "base_checkpoint": (
                    FileChoices([FROM_MODEL, *fitting_files(BASE_FOLDERS, BASE_FORMATS)]),
                    {
                        "tooltip": "SD1.5 checkpoint from models/checkpoints (Realistic Vision 5.1 upstream). "
                        f"Choose {FROM_MODEL} to use the MODEL input instead."
                    },
                ),
                "iclight_fbc": (
                    slot_choices(ICLIGHT_SLOT),
                    {"tooltip": ICLIGHT_TOOLTIP},
                ),
                "dtype": (
                    list(DTYPE_CHOICES),
                    {
                        "default": "auto",
                        "tooltip": "Weight dtype of base_checkpoint. auto: ComfyUI's choice for your device (fp16/bf16 "
                        "on GPUs, fp32 on the CPU); fp8 halves the memory again and computes in fp16/bf16. A "
                        "connected MODEL keeps the dtype its loader chose (leave auto).",
                    },
                ),
            },
            "optional": {
                "model": (
                    "MODEL",
                    {
                        "tooltip": f"Optional SD1.5 MODEL (e.g. from Load Checkpoint, LoRAs welcome), used when "
                        f"base_checkpoint is {FROM_MODEL}. It is never modified."
                    },
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        # Two file inputs: the node names only its hidden id (a message is filed under every input named) and
        # reads both from the queued prompt; their lists (FileChoices) pass ComfyUI's own list check.
        queued = host.queued_widget_values(settings, cls.__name__)
        if queued is None:
            return True
        return queue_problem(
            cls,
            settings,
            base_file_problem(queued.get("base_checkpoint")),
            file_problem(ICLIGHT_SLOT, queued.get("iclight_fbc")),
        )

    def load(self, base_checkpoint, iclight_fbc, dtype, model=None, settings=None):
        check_base_choice(base_checkpoint, dtype, model)
        iclight = slot_path(ICLIGHT_SLOT, iclight_fbc)
        if base_checkpoint != FROM_MODEL:
            path = require_file(BASE_FOLDERS, base_checkpoint, base_file_problem(base_checkpoint))
            model = load_checkpoint_model(path, base_checkpoint, dtype)
        return (iclight_unet(model, iclight),)


class RelightVidTemporalLoader:
    """IC-Light MODEL + temporal weights → the RelightVid MODEL."""

    DESCRIPTION = (
        "Adds RelightVid's temporal modules (relvid_mm_sd15_fbc.pth in models/relightvid; AnimateDiff v1/v2 motion "
        "modules from models/animatediff_models work too) and clip-wide GroupNorm to the MODEL of Load RelightVid "
        "U-Net. The result is a MODEL for the RelightVid Sampler, KSampler and every ComfyUI sampler; the latent's "
        "batch is the clip's frames."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("relightvid_model",)
    OUTPUT_TOOLTIPS = ("RelightVid's video U-Net as a MODEL (a patched clone of the input).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "relightvid_unet": (
                    "MODEL",
                    {"tooltip": "The MODEL of Load RelightVid U-Net (SD1.5 + IC-Light)."},
                ),
                "temporal_weights": (
                    slot_choices(MOTION_SLOT),
                    {"tooltip": MOTION_TOOLTIP},
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        queued = host.queued_widget_values(settings, cls.__name__)
        if queued is None:
            return True
        return queue_problem(cls, settings, file_problem(MOTION_SLOT, queued.get("temporal_weights")))

    def load(self, relightvid_unet, temporal_weights, settings=None):
        return (temporal_model(relightvid_unet, slot_path(MOTION_SLOT, temporal_weights)),)


class RelightVidApplyModel:
    """SD1.5 MODEL → RelightVid MODEL (a patched clone), in one node."""

    DESCRIPTION = (
        "Turns an SD1.5 MODEL (Load Checkpoint or Load Diffusion Model, any weight dtype, LoRAs applied before "
        "welcome) into RelightVid's video U-Net: Load RelightVid U-Net (connected MODEL) and Load RelightVid "
        "Temporal Weights in one node. The input MODEL is not changed."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("RelightVid's video U-Net as a MODEL (a patched clone of the input).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (
                    "MODEL",
                    {"tooltip": "An SD1.5 MODEL (Realistic Vision 5.1 upstream); it is never modified."},
                ),
                "iclight_fbc": (
                    slot_choices(ICLIGHT_SLOT),
                    {"tooltip": ICLIGHT_TOOLTIP},
                ),
                "temporal_weights": (
                    slot_choices(MOTION_SLOT),
                    {"tooltip": MOTION_TOOLTIP},
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        queued = host.queued_widget_values(settings, cls.__name__)
        if queued is None:
            return True
        return queue_problem(
            cls,
            settings,
            file_problem(ICLIGHT_SLOT, queued.get("iclight_fbc")),
            file_problem(MOTION_SLOT, queued.get("temporal_weights")),
        )

    def apply(self, model, iclight_fbc, temporal_weights, settings=None):
        iclight = slot_path(ICLIGHT_SLOT, iclight_fbc)
        motion = slot_path(MOTION_SLOT, temporal_weights)
        return (apply_relightvid(model, iclight, motion),)
