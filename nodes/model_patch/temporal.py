"""RelightVid's temporal modules and clip-wide norms inside ComfyUI's SD1.5 U-Net.

This module talks to ComfyUI: it edits the layers of ComfyUI's own U-Net (``comfy.ldm``'s ``UNetModel``)
while a patched MODEL is loaded, through a ModelPatcher injection, and takes its layers out again when the
model is unloaded or another clone of it loads.

Frames are the latent's batch. What a layer needs to know of a call, the frames per clip, travels with the
call: :func:`frames_per_clip` sets it in a :class:`contextvars.ContextVar` for the duration of one U-Net
call (a DIFFUSION_MODEL wrapper of the patched MODEL does so), so clones of one MODEL, calls on other
threads and prompts run one after another never see each other's value.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ...relightvid_core.errors import InputError, WeightFormatError
from ...relightvid_core.models.configs import config_for_variant
from ...relightvid_core.weights.convert import is_motion_key

if TYPE_CHECKING:  # the network imports diffusers (seconds): built only when a loader runs
    from ...relightvid_core.models.unet3d import RelightVidUNet
    from ...relightvid_core.weights.load import MotionWeights

try:
    from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock, Upsample
except ImportError:  # the pack still imports (and its other nodes work) outside ComfyUI
    ResBlock = Upsample = None

_CLIP_FRAMES: contextvars.ContextVar[int | None] = contextvars.ContextVar("relightvid_clip_frames", default=None)


def clip_length(batch: int, transformer_options: dict) -> int:
    """Frames per clip of a U-Net call: ComfyUI stacks whole conds on the batch, one ``cond_or_uncond`` entry each.

    Raises:
        InputError: the batch does not split into the conds evenly.
    """
    conds = len(transformer_options.get("cond_or_uncond") or [None])
    if batch % conds:
        raise InputError(
            f"the U-Net batch of {batch} latents does not split into {conds} conditionings of equal length."
        )
    return batch // conds


@contextlib.contextmanager
def frames_per_clip(frames: int) -> Iterator[None]:
    """The clip length the temporal layers and clip-wide norms use inside the ``with`` block."""
    token = _CLIP_FRAMES.set(frames)
    try:
        yield
    finally:
        _CLIP_FRAMES.reset(token)


def current_clip_frames() -> int:
    """The clip length of the U-Net call in progress.

    Raises:
        RuntimeError: the patched U-Net was called outside a patched MODEL's sampling.
    """
    frames = _CLIP_FRAMES.get()
    if frames is None:
        raise RuntimeError(
            "the RelightVid-patched U-Net was called outside ComfyUI's sampling (no clip length is known); "
            "run it through a sampler node"
        )
    return frames


class ClipGroupNorm(nn.Module):
    """Runs a U-Net GroupNorm with statistics over all frames of each clip.

    It references the original norm (not a sub-module: the U-Net's weights keep their keys, so weight
    patches, casts and low-VRAM weight functions of ComfyUI apply to it as before) and feeds it a
    ``(clips, C, F, h, w)`` view, over which group_norm's statistics span the frames.
    """

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.__dict__["norm"] = norm  # a reference, not a registered sub-module

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        frames = current_clip_frames()
        if frames == 1:
            return self.norm(hidden_states)
        batch_frames, channels, height, width = hidden_states.shape
        clips = hidden_states.view(batch_frames // frames, frames, channels, height, width).transpose(1, 2)
        normed = self.norm(clips)
        return normed.transpose(1, 2).reshape(batch_frames, channels, height, width)


class TemporalLayer(nn.Module):
    """One temporal module inserted into a U-Net layer; the module itself belongs to the temporal ModelPatcher."""

    def __init__(self, motion: nn.Module):
        super().__init__()
        self.__dict__["motion"] = motion  # a reference: its weights load and offload with their own patcher

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        dtype = next(self.motion.parameters()).dtype
        out = self.motion(hidden_states.to(dtype), current_clip_frames())
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


def build_temporal_modules(motion: MotionWeights, config: dict) -> TemporalModules:
    """The library's motion modules (as in :class:`RelightVidUNet`) holding the loaded temporal weights, frozen
    like ComfyUI's own weights: sampling never trains them, and guidance that differentiates through the model
    must not make autograd record them."""
    from ...relightvid_core.models.unet3d import RelightVidUNet

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


@dataclass(frozen=True)
class Injection:
    """Inserts the temporal layers and clip-wide norms into the loaded U-Net, and takes them out again.

    It keeps no record of what it inserted: :meth:`eject` removes every layer of this module's kinds, so
    whichever clone of a MODEL injected last, the U-Net comes back to its own layers.
    """

    temporal: TemporalModules
    clip_wide_norm: bool

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
                index = next(
                    (i for i, child in enumerate(layer) if isinstance(child, Upsample)),
                    len(layer),
                )
                places.append((layer, index, module))
        for module in self.temporal.mid:
            places.append((unet.middle_block, 2, module))  # after the mid block's spatial transformer
        return places

    @staticmethod
    def norms(unet) -> list[tuple[nn.Module, str]]:
        """(parent, attribute) of every ResNet GroupNorm and of the output norm."""
        found = []
        for module in unet.modules():
            if isinstance(module, ResBlock):
                found += [(module.in_layers, "0"), (module.out_layers, "0")]
        return found + [(unet.out, "0")]

    def inject(self, patcher) -> None:
        unet = patcher.model.diffusion_model
        for layer, index, module in self.placements(unet):
            layer.insert(index, TemporalLayer(module))
        if self.clip_wide_norm:
            for parent, name in self.norms(unet):
                parent._modules[name] = ClipGroupNorm(parent._modules[name])

    def eject(self, patcher) -> None:
        for module in list(patcher.model.diffusion_model.modules()):
            for name, child in list(module._modules.items()):
                if isinstance(child, ClipGroupNorm):
                    module._modules[name] = child.norm
            if isinstance(module, nn.Sequential):
                for index in reversed(range(len(module))):
                    if isinstance(module[index], TemporalLayer):
                        del module[index]
