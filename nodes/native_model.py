"""RelightVid inside ComfyUI's own sampling: an SD1.5 MODEL patched into RelightVid's video U-Net.

ComfyUI's SD1.5 U-Net stays the network; a clone of the MODEL gets, through its ModelPatcher only:

* IC-Light's fbc offsets as weight patches ("diff", conv_in padded from 4 to 12 input channels), so LoRAs
  applied before, fp8 weights and low-VRAM loading compose with them as with any LoRA;
* the foreground ‖ background latents as the model's concat condition (an object patch of ``extra_conds``
  reading :data:`RELIGHTVID_IMAGE_KEY` from each conditioning entry; an entry without it gets zeros, the
  official "no image" condition of the unconditional branch, UPSTREAM.md §d);
* the temporal modules, built by the library (``relightvid_core.models``, the same modules as
  ``RelightVidUNet``) and owned by their own ModelPatcher that model management loads and offloads with the
  U-Net (plain torch layers, so they load whole: about 0.4 GB at fp16, while the U-Net's own layers may
  load partially on low VRAM), inserted after the spatial layers of each U-Net layer while the model is
  loaded (injections);
* clip-wide GroupNorm in the ResNets and the output norm (RelightVid and AnimateDiff v1 normalise over all
  frames of a clip, UPSTREAM.md §a.1), as targeted replacements of those norm modules while loaded.

Frames are the LATENT's batch ``[F, 4, h, w]``. ComfyUI batches whole conds, so the U-Net sees
``n_conds × F`` items; a DIFFUSION_MODEL wrapper derives the clip length as batch / ``len(cond_or_uncond)``
for every call and hands it to the temporal and norm layers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..relightvid_core.errors import InputError, WeightFormatError
from ..relightvid_core.models.configs import FULL_FBC, config_for_variant
from ..relightvid_core.weights import detect_format, expected_shapes, load_motion_weights, open_source
from ..relightvid_core.weights.convert import is_motion_key, ldm_to_diffusers_key_map, spatial_key_map
from ..relightvid_core.weights.detect import WeightFormat
from ..relightvid_core.weights.validate import check_shapes, require_format
from ..relightvid_core.values import counted
from . import checks, host
from .loaders import (
    ICLIGHT_FOLDERS,
    ICLIGHT_FORMATS,
    ICLIGHT_SLOT,
    MOTION_FOLDERS,
    MOTION_SLOT,
    FileChoices,
    file_problem,
    fitting_files,
    require_file,
)

if TYPE_CHECKING:  # the network imports diffusers (seconds): built only when the node runs
    from ..relightvid_core.models.unet3d import RelightVidUNet

try:
    import comfy.conds
    import comfy.model_patcher
    import comfy.patcher_extension
    from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock, Upsample
except ImportError:  # the pack still imports (and its other nodes work) outside ComfyUI
    comfy = None

logger = logging.getLogger(__name__)

# CONTRACT with the native conditioning nodes: a conditioning entry's extras may carry this key, a tensor
# [F, 8, h, w] of RAW latents as VAE Encode returns them (unscaled), foreground ‖ background on channels.
RELIGHTVID_IMAGE_KEY = "relightvid_image"
NEGATIVE_COND = "negative"  # the guiders' name of the unconditional cond (CFGGuider, DualCFGGuider, IIE guider)
IMAGE_CHANNELS = 8  # foreground (4) ‖ background (4) latents
PATCH_KEY = "relightvid"  # our entries among the clone's injections, wrappers and additional models
UNET_PREFIX = host.PatchedModelSource.PREFIX  # the U-Net keys of a MODEL
CATEGORY = "RelightVid/native"


def require_comfy() -> None:
    if comfy is None:
        raise InputError("Apply RelightVid (native MODEL) runs only inside ComfyUI (comfy could not be imported).")


# --- clip length -------------------------------------------------------------------------------------------


@dataclass
class ClipState:
    """Frames per clip of the U-Net call in progress; set by :func:`clip_length_wrapper`, read by the layers."""

    frames: int | None = None

    def current(self) -> int:
        if self.frames is None:
            raise RuntimeError(
                "the RelightVid-patched U-Net was called outside ComfyUI's sampling (no clip length is known); "
                "run it through a sampler node"
            )
        return self.frames


def clip_length(batch: int, transformer_options: dict) -> int:
    """Frames per clip: ComfyUI stacks whole conds on the batch, one entry of ``cond_or_uncond`` each."""
    conds = len(transformer_options.get("cond_or_uncond") or [None])
    if batch % conds:
        raise InputError(f"the U-Net batch of {batch} latents does not split into {conds} conditionings of equal length.")
    return batch // conds


def clip_length_wrapper(state: ClipState):
    """A DIFFUSION_MODEL wrapper that publishes the clip length of each call in ``state``."""

    def wrapper(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        state.frames = clip_length(x.shape[0], transformer_options)
        try:
            return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        finally:
            state.frames = None

    return wrapper


def check_clip_conds(conds: Mapping[str, list | None], frames: int) -> None:
    """Every cond but the negative carries the RelightVid image, with as many frames as the latent.

    Args:
        conds: a guider's conds by name (``positive``, ``middle``, ``negative``, ...; lists of cond entries,
            ComfyUI's internal form). The negative is the official "no image" branch and may go without.
        frames: the latent's batch size (= frames of the clip).

    Raises:
        InputError: naming the cond without an image, or both frame counts.
    """
    for name, cond in conds.items():
        if name != NEGATIVE_COND and cond and any(RELIGHTVID_IMAGE_KEY not in entry for entry in cond):
            raise InputError(
                f"the {name} conditioning carries no RelightVid image; connect it from a RelightVid Conditioning "
                "(native) node, not straight from CLIP Text Encode."
            )
    entries = [entry for cond in conds.values() if cond for entry in cond]
    counts = {entry[RELIGHTVID_IMAGE_KEY].shape[0] for entry in entries if RELIGHTVID_IMAGE_KEY in entry}
    if not counts:
        raise InputError(
            "no conditioning carries the RelightVid image; connect positive (and middle) from a RelightVid "
            "Conditioning (native) node."
        )
    if counts != {frames}:
        raise InputError(
            f"the latent has {counted(frames, 'frame')} but the RelightVid conditioning has {', '.join(map(str, sorted(counts)))}; "
            "make the latent from the same clip (the Conditioning node's latent, or VAE Encode of its frames)."
        )


@host.reports_errors
def check_conds_wrapper(executor, noise, *args, **kwargs):
    """An OUTER_SAMPLE wrapper that refuses conds the RelightVid MODEL cannot use, before ComfyUI encodes them
    (the guider is the executor's ``class_obj``). It wraps the whole sampling run, so every library error raised
    while a core sampler node runs the patched MODEL reaches ComfyUI as the pack reports its own."""
    check_clip_conds(executor.class_obj.original_conds, noise.shape[0])
    return executor(noise, *args, **kwargs)


# Core nodes that sample with a MODEL, and their inputs whose conditioning must carry the RelightVid image (the
# negative is the official "no image" branch). Other packs' samplers and guiders are checked when they sample.
IMAGE_CONDITIONING_INPUTS = {
    "KSampler": ("positive",),
    "KSamplerAdvanced": ("positive",),
    "SamplerCustom": ("positive",),
    "CFGGuider": ("positive",),
    "DualCFGGuider": ("cond1", "cond2"),
    "BasicGuider": ("conditioning",),
}
CONDITIONING_NODE = "RelightVidNativeConditioning"  # the node that puts the image on a conditioning


def _link_source(value: object) -> str | None:
    """The source node id of an API-prompt link ``[node id, output index]``, or None for a constant."""
    return str(value[0]) if isinstance(value, list) and len(value) == 2 else None


def _named(prompt: dict, node_id: str) -> str:
    title = (prompt[node_id].get("_meta") or {}).get("title") or prompt[node_id].get("class_type")
    return f"{title} (node {node_id})"


def _model_comes_from(prompt: dict, node_id: str, source: str) -> bool:
    """True when the ``model`` input of ``node_id`` comes from ``source``, directly or through MODEL → MODEL nodes."""
    seen = set()
    while node_id in prompt and node_id not in seen:
        seen.add(node_id)
        node_id = _link_source(prompt[node_id].get("inputs", {}).get("model"))
        if node_id == source:
            return True
    return False


def _upstream(prompt: dict, node_id: str) -> set[str]:
    """``node_id`` and every node it takes an input from, transitively."""
    found, todo = set(), [node_id]
    while todo:
        current = todo.pop()
        if current in found or current not in prompt:
            continue
        found.add(current)
        todo.extend(filter(None, map(_link_source, prompt[current].get("inputs", {}).values())))
    return found


def wiring_problem(prompt: dict | None, node_id: object) -> str | None:
    """Queue-time check of the prompt around an Apply RelightVid node: a core sampler or guider that samples its
    MODEL (directly or through MODEL → MODEL nodes) with a positive, cond1, cond2 or conditioning input that no
    RelightVid Conditioning (native) node feeds — e.g. CLIP Text Encode wired straight into KSampler — would
    fail when it samples (:func:`check_clip_conds`); it is refused before anything loads, in one sentence."""
    if not prompt:
        return None
    model_node = str(node_id)
    for consumer, node in prompt.items():
        names = IMAGE_CONDITIONING_INPUTS.get(node.get("class_type"), ())
        if not names or not _model_comes_from(prompt, consumer, model_node):
            continue
        for name in names:
            source = _link_source(node.get("inputs", {}).get(name))
            if source is None or source not in prompt:
                continue
            if not any(prompt[n].get("class_type") == CONDITIONING_NODE for n in _upstream(prompt, source)):
                return (
                    f"{_named(prompt, consumer)} samples this RelightVid MODEL with {name} from "
                    f"{_named(prompt, source)}, which carries no RelightVid image; connect {name} from a RelightVid "
                    "Conditioning (native) node, not straight from CLIP Text Encode."
                )
    return None


def clip_preview_wrapper(executor, guider, sigmas, extra_args, callback, *args, **kwargs):
    """A SAMPLER_SAMPLE wrapper that plays every frame of each step's x̂₀ in the node's preview.

    ComfyUI's own step callback still runs (progress bar, Cancel, its first-frame preview); the clip's frames
    are the latent batch, which is what its callback receives as x̂₀.
    """
    if callback is None:
        return executor(guider, sigmas, extra_args, callback, *args, **kwargs)
    with host.ClipPreview(guider.model_patcher.load_device) as preview:

        def step_callback(step, x0, x, total_steps):
            callback(step, x0, x, total_steps)
            preview.show(x0)

        return executor(guider, sigmas, extra_args, step_callback, *args, **kwargs)


# --- layers inserted while the model is loaded -------------------------------------------------------------


class ClipGroupNorm(nn.Module):
    """Runs a U-Net GroupNorm with statistics over all frames of each clip.

    It references the original norm (not a sub-module: the U-Net's weights keep their keys, so weight
    patches, casts and low-VRAM weight functions of ComfyUI apply to it as before) and feeds it a
    ``(clips, C, F, h, w)`` view, over which group_norm's statistics span the frames.
    """

    def __init__(self, norm: nn.Module, state: ClipState):
        super().__init__()
        self.__dict__["norm"] = norm  # a reference, not a registered sub-module
        self.state = state

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        frames = self.state.current()
        if frames == 1:
            return self.norm(hidden_states)
        batch_frames, channels, height, width = hidden_states.shape
        clips = hidden_states.view(batch_frames // frames, frames, channels, height, width).transpose(1, 2)
        normed = self.norm(clips)
        return normed.transpose(1, 2).reshape(batch_frames, channels, height, width)


class TemporalLayer(nn.Module):
    """One temporal module inserted into a U-Net layer; the module itself belongs to the temporal ModelPatcher."""

    def __init__(self, motion: nn.Module, state: ClipState):
        super().__init__()
        self.__dict__["motion"] = motion  # a reference: its weights load and offload with their own patcher
        self.state = state

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        dtype = next(self.motion.parameters()).dtype
        out = self.motion(hidden_states.to(dtype), self.state.current())
        return out.to(hidden_states.dtype)


class TemporalModules(nn.Module):
    """The temporal modules in U-Net order, for their own ModelPatcher.

    ``down[level]``, ``up[level]`` and ``mid`` are the library's ``motion_modules`` lists (empty where a
    level has none); ``down_layers`` / ``up_layers`` are the ResNet layers per level they pair with.
    """

    def __init__(self, skeleton: RelightVidUNet):
        super().__init__()
        self.down = nn.ModuleList(block.motion_modules for block in skeleton.down_blocks)
        self.up = nn.ModuleList(block.motion_modules for block in skeleton.up_blocks)
        self.mid = skeleton.mid_block.motion_modules
        self.down_layers = [len(block.resnets) for block in skeleton.down_blocks]
        self.up_layers = [len(block.resnets) for block in skeleton.up_blocks]

    def get_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def per_layer(self, blocks: nn.ModuleList, layers: list[int]) -> list[nn.Module | None]:
        """One entry per U-Net layer (ResNet) in order: its temporal module, or None."""
        return [modules[i] if len(modules) else None for modules, count in zip(blocks, layers) for i in range(count)]


def build_temporal_modules(motion, config: dict) -> TemporalModules:
    """The library's motion modules (as in :class:`RelightVidUNet`) holding the loaded temporal weights."""
    from ..relightvid_core.models.unet3d import RelightVidUNet

    with torch.device("meta"):
        skeleton = RelightVidUNet.from_config(config_for_variant(config, motion.variant))
    result = skeleton.load_state_dict(motion.state_dict, strict=False, assign=True)
    missing = [key for key in result.missing_keys if is_motion_key(key)]
    if missing or result.unexpected_keys:
        raise WeightFormatError(
            f"{motion.source_name} does not fit the temporal modules: missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}."
        )
    return TemporalModules(skeleton).requires_grad_(False).eval()


def _layers_led_by_resblock(blocks) -> list[nn.Sequential]:
    return [block for block in blocks if isinstance(block[0], ResBlock)]


@dataclass
class Injection:
    """Inserts the temporal layers and clip-wide norms into the loaded U-Net, and takes them out again."""

    temporal: TemporalModules
    state: ClipState
    clip_wide_norm: bool
    inserted: list = field(default_factory=list)  # (sequence, layer) pairs
    replaced: list = field(default_factory=list)  # (parent, name, original) triples

    def placements(self, unet) -> list[tuple[nn.Sequential, int, nn.Module]]:
        """(U-Net layer, index, temporal module): after the ResNet and spatial transformer, before an upsampler."""
        down = _layers_led_by_resblock(unet.input_blocks)
        up = list(unet.output_blocks)
        down_modules = self.temporal.per_layer(self.temporal.down, self.temporal.down_layers)
        up_modules = self.temporal.per_layer(self.temporal.up, self.temporal.up_layers)
        if len(down) != len(down_modules) or len(up) != len(up_modules):
            raise WeightFormatError(
                f"the MODEL's U-Net has {len(down)} down and {len(up)} up layers, the temporal weights expect "
                f"{len(down_modules)} and {len(up_modules)}; is it an SD1.5 U-Net?"
            )
        places = []
        for layer, module in zip(down + up, down_modules + up_modules):
            if module is not None:
                index = next((i for i, child in enumerate(layer) if isinstance(child, Upsample)), len(layer))
                places.append((layer, index, module))
        for module in self.temporal.mid:
            places.append((unet.middle_block, 2, module))  # after the mid block's spatial transformer
        return places

    def norms(self, unet) -> list[tuple[nn.Module, str]]:
        """(parent, attribute) of every ResNet GroupNorm and of the output norm."""
        found = []
        for module in unet.modules():
            if isinstance(module, ResBlock):
                found += [(module.in_layers, "0"), (module.out_layers, "0")]
        return found + [(unet.out, "0")]

    def inject(self, patcher) -> None:
        unet = patcher.model.diffusion_model
        for layer, index, module in self.placements(unet):
            temporal_layer = TemporalLayer(module, self.state)
            layer.insert(index, temporal_layer)
            self.inserted.append((layer, temporal_layer))
        if self.clip_wide_norm:
            for parent, name in self.norms(unet):
                original = parent._modules[name]
                parent._modules[name] = ClipGroupNorm(original, self.state)
                self.replaced.append((parent, name, original))

    def eject(self, patcher) -> None:
        for parent, name, original in reversed(self.replaced):
            parent._modules[name] = original
        for layer, temporal_layer in reversed(self.inserted):
            index = next(i for i, child in enumerate(layer) if child is temporal_layer)
            del layer[index]
        self.replaced.clear()
        self.inserted.clear()


# --- the image condition -----------------------------------------------------------------------------------


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


# --- weights -------------------------------------------------------------------------------------------------


def _spatial(shapes: dict) -> dict:
    return {key: shape for key, shape in shapes.items() if not is_motion_key(key)}


def base_unet_shapes(model) -> dict[str, tuple[int, ...]]:
    """LDM key (no prefix) → shape of the MODEL's own U-Net weights, after checking it is a plain SD1.5 U-Net.

    Shapes come from the original weights (the patcher's backup while a patched clone is loaded), so a MODEL
    whose U-Net another RelightVid clone currently holds widened still reads as the SD1.5 it is.

    Raises:
        WeightFormatError: naming what the MODEL is (SDXL, SD2, an inpainting U-Net, ...).
    """
    if model.get_injections(PATCH_KEY):
        raise WeightFormatError("the connected MODEL is already a RelightVid MODEL; connect the SD1.5 MODEL instead.")
    shapes = host.PatchedModelSource(model).shapes()
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


def override_patches(motion, base_shapes: dict) -> dict:
    """Spatial tensors a full-U-Net temporal file carries (the HF Space's), as "set" patches after the merge."""
    to_ldm = ldm_to_diffusers_key_map(list(base_shapes))
    return {UNET_PREFIX + to_ldm[key]: ("set", (value,)) for key, value in motion.spatial_overrides.items()}


def compute_dtype(model) -> torch.dtype:
    """The dtype the U-Net computes in (fp8 weights are cast to it per layer)."""
    return model.model.manual_cast_dtype or model.model.get_dtype()


def apply_relightvid(model, iclight_path: str, motion_path: str):
    """A clone of the SD1.5 ``model`` patched into RelightVid's video U-Net; ``model`` is not modified.

    Raises:
        WeightFormatError: the MODEL is not SD1.5, or a file is of the wrong kind.
    """
    require_comfy()
    base_shapes = base_unet_shapes(model)
    offsets = iclight_patches(iclight_path, base_shapes)
    motion = load_motion_weights(
        motion_path, dtype=compute_dtype(model), device=model.offload_device, config=FULL_FBC
    )
    # Frozen like ComfyUI's own weights: sampling never trains them, and a caller with gradients on (guidance
    # that differentiates through the model) must not make autograd record them.
    temporal = build_temporal_modules(motion, FULL_FBC).requires_grad_(False)
    state = ClipState()

    patched = model.clone()
    patched.add_patches(offsets)
    if motion.spatial_overrides:
        patched.add_patches(override_patches(motion, base_shapes))
    patched.add_object_patch(
        "extra_conds", ImageConcatConds(model.get_model_object("extra_conds"), model.get_model_object("latent_format"))
    )
    temporal_patcher = comfy.model_patcher.ModelPatcher(
        temporal, load_device=model.load_device, offload_device=model.offload_device
    )
    patched.set_additional_models(PATCH_KEY, [temporal_patcher])
    injection = Injection(temporal, state, clip_wide_norm=not motion.variant.inflated_groupnorm)
    patched.set_injections(PATCH_KEY, [comfy.patcher_extension.PatcherInjection(injection.inject, injection.eject)])
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, PATCH_KEY, clip_length_wrapper(state))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, PATCH_KEY, check_conds_wrapper)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, PATCH_KEY, clip_preview_wrapper)
    logger.info("RelightVid patched the MODEL: %d offsets, temporal weights %s", len(offsets), motion.source_name)
    return patched


class RelightVidApplyModel:
    """SD1.5 MODEL → RelightVid MODEL (a patched clone) for ComfyUI's own samplers."""

    DESCRIPTION = (
        "Turns an SD1.5 MODEL (Load Checkpoint or Load Diffusion Model, any weight dtype, LoRAs applied before "
        "welcome) into RelightVid's video U-Net for ComfyUI's own samplers: adds IC-Light's fbc offsets, the "
        "temporal modules and clip-wide GroupNorm to a clone; the input MODEL is not changed. The latent's "
        "batch is the clip's frames; conditionings carry the foreground/background latents."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The RelightVid video U-Net as a MODEL (a patched clone of the input).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "An SD1.5 MODEL (Realistic Vision 5.1 upstream); it is never modified."}),
                "iclight_fbc": (
                    FileChoices(fitting_files(ICLIGHT_FOLDERS, ICLIGHT_FORMATS)),
                    {
                        "tooltip": "IC-Light fbc offsets (iclight_sd15_fbc.safetensors, 12-channel) from models/relightvid "
                        "or models/diffusion_models. The fc (8-channel) file does not work here."
                    },
                ),
                "temporal_weights": (
                    FileChoices(fitting_files(MOTION_FOLDERS, MOTION_SLOT.formats)),
                    {
                        "tooltip": "Temporal weights: relvid_mm_sd15_fbc.pth from models/relightvid (AnimateDiff v1/v2 "
                        "motion modules from models/animatediff_models work too)."
                    },
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        # Two file inputs, as in the U-Net loader: the node names only its hidden id and checks both files from
        # the queued prompt, then the samplers that use its MODEL.
        queued = host.queued_widget_values(settings, cls.__name__)
        if queued is None:
            return True
        files = checks.every_problem(
            file_problem(ICLIGHT_SLOT, queued.get("iclight_fbc")),
            file_problem(MOTION_SLOT, queued.get("temporal_weights")),
        )
        return files if files is not True else checks.first_problem(wiring_problem(host.queued_prompt(), settings))

    def apply(self, model, iclight_fbc, temporal_weights, settings=None):
        iclight = require_file(ICLIGHT_FOLDERS, iclight_fbc, file_problem(ICLIGHT_SLOT, iclight_fbc))
        motion = require_file(MOTION_FOLDERS, temporal_weights, file_problem(MOTION_SLOT, temporal_weights))
        return (apply_relightvid(model, iclight, motion),)
