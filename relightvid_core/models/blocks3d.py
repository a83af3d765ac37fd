"""The U-Net's 3-D blocks: per-frame convolutions and attention, temporal modules, and the one place that
decides which GroupNorm spans frames.

Hidden states are folded frames ``(B*F, C, h, w)`` (batch outer, frames inner), kept in channels-last
memory format: convolutions run faster that way and the attention token view ``(B*F, h*w, C)`` costs
no copy. Key names are diffusers' SD1.5 names (``resnets``, ``attentions``, ``downsamplers.0.conv`` ...)
plus ``motion_modules``, so official state dicts load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from einops import rearrange
from torch import nn

from .chunks import slices
from .motion import MotionModule

# Spatial-transformer GroupNorm eps (diffusers / SD1.5), unlike the ResNets' norm_eps.
SPATIAL_NORM_EPS = 1e-6


@dataclass(frozen=True)
class Clip:
    """What the per-frame layers need to know about the folded batch: frames per video and PE offset."""

    num_frames: int
    frame_offset: int = 0


@dataclass(frozen=True)
class CrossContext:
    """What the spatial cross-attentions attend to: the text once per clip, optional tokens per frame.

    Attributes:
        text: (B, tokens, D) text embeddings, shared by the frames of a clip.
        num_frames: frames per clip.
        per_frame: (B*F, n, D) tokens appended after the text in every frame (the paper's HDR tokens), or None.
    """

    text: torch.Tensor
    num_frames: int
    per_frame: torch.Tensor | None = None

    def keys_values(self, attention: Attention) -> tuple[torch.Tensor, torch.Tensor]:
        """(B*F, tokens (+ n), C) keys and values of ``attention``.

        The text's are projected once per clip and repeated per frame: the frames of a clip share the
        same tokens, so projecting them once per frame (as the official code does) only repeats work.
        """
        keys, values = (
            projection(self.text).repeat_interleave(self.num_frames, dim=0)
            for projection in (attention.to_k, attention.to_v)
        )
        if self.per_frame is None:
            return keys, values
        return (
            torch.cat([keys, attention.to_k(self.per_frame)], dim=1),
            torch.cat([values, attention.to_v(self.per_frame)], dim=1),
        )


def group_norm(norm: nn.GroupNorm, hidden_states: torch.Tensor, num_frames: int, across_frames: bool) -> torch.Tensor:
    """Apply ``norm`` per frame, or with statistics over all frames of each video.

    RelightVid (like AnimateDiff v1) normalises the ResNets and the output jointly over the whole clip
    (docs/official_code.md §a.1), so the spatial path is not frame-independent. The joint statistics are taken on a
    ``(B, C, F*h, w)`` view of the channels-last tensor, which needs no copy.
    """
    if not across_frames or num_frames == 1:
        return norm(hidden_states)
    # Of a channels-last tensor (the U-Net's layout) the clip view is a view; any other layout is made one first,
    # so the statistics are summed in the same order whatever the caller passes.
    channels_last = hidden_states.contiguous(memory_format=torch.channels_last)
    clip_view = rearrange(channels_last, "(b f) c h w -> b c (f h) w", f=num_frames)
    normed = F.group_norm(clip_view, norm.num_groups, norm.weight, norm.bias, norm.eps)
    return rearrange(normed, "b c (f h) w -> (b f) c h w", f=num_frames)


class ResnetBlock3D(nn.Module):
    """SD1.5 ResNet block (GN → SiLU → conv → +time → GN → SiLU → conv, + shortcut) on folded frames."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        groups: int,
        eps: float,
        norm_across_frames: bool,
        output_scale_factor: float = 1.0,
    ):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        self.norm_across_frames = norm_across_frames
        self.output_scale_factor = output_scale_factor

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor, clip: Clip) -> torch.Tensor:
        """Args: hidden_states (B*F, C_in, h, w); temb (B, T) one embedding per video."""
        frames = clip.num_frames
        # SiLU in place on the fresh norm outputs: one activation-sized tensor fewer at the peak.
        x = F.silu(group_norm(self.norm1, hidden_states, frames, self.norm_across_frames), inplace=True)
        x = self.conv1(x)
        time_bias = self.time_emb_proj(F.silu(temb)).to(x.dtype)
        # In-place adds only touch fresh convolution outputs, never a tensor kept as a skip connection.
        x.add_(time_bias.repeat_interleave(frames, dim=0)[:, :, None, None])
        x = F.silu(group_norm(self.norm2, x, frames, self.norm_across_frames), inplace=True)
        x = self.conv2(x)
        x.add_(hidden_states if self.conv_shortcut is None else self.conv_shortcut(hidden_states))
        return x if self.output_scale_factor == 1 else x.div_(self.output_scale_factor)


def attend(attention: Attention, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Multi-head attention of ``attention`` (diffusers' ``AttnProcessor2_0`` maths) on projected keys/values.

    Args: queries (N, L, C) normalised tokens; keys, values (N, S, C) already projected. Returns (N, L, C).
    """
    query = attention.to_q(queries)
    rows, _, channels = query.shape
    head_dim = channels // attention.heads

    def split_heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(rows, -1, attention.heads, head_dim).transpose(1, 2)

    attended = F.scaled_dot_product_attention(split_heads(query), split_heads(keys), split_heads(values))
    return attention.to_out[0](attended.transpose(1, 2).reshape(rows, -1, channels))


def transformer_block_(block: BasicTransformerBlock, tokens: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
    """diffusers' SD1.5 ``BasicTransformerBlock`` (pre-norm self-attention, cross-attention, GEGLU), in place.

    Args: tokens (N, L, C) frames' tokens, updated in place; keys, values (N, S, C) projected cross-attention
    keys and values of those frames. Adding each residual in place gives the same sums as the block's
    ``output + hidden_states`` without another token-sized tensor.
    """
    normed = block.norm1(tokens)
    tokens.add_(attend(block.attn1, normed, block.attn1.to_k(normed), block.attn1.to_v(normed)))
    tokens.add_(attend(block.attn2, block.norm2(tokens), keys, values))
    tokens.add_(block.ff(block.norm3(tokens)))


class SpatialTransformer(nn.Module):
    """SD1.5 spatial transformer applied to every frame: GN → 1×1 conv → diffusers block → 1×1 conv, + input.

    The block runs a few frames at a time (:func:`~relightvid_core.models.chunks.slices`), so its attention
    and feed-forward intermediates never span the whole clip.
    """

    def __init__(self, channels: int, heads: int, cross_attention_dim: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=SPATIAL_NORM_EPS)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(channels, heads, channels // heads, cross_attention_dim=cross_attention_dim)]
        )
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, hidden_states: torch.Tensor, context: CrossContext) -> torch.Tensor:
        """Args: hidden_states (B*F, C, h, w); context: the cross-attention tokens of every frame."""
        batch_frames, channels, height, width = hidden_states.shape
        tokens = self.proj_in(self.norm(hidden_states)).permute(0, 2, 3, 1).reshape(batch_frames, height * width, channels)
        for block in self.transformer_blocks:
            keys, values = context.keys_values(block.attn2)
            for frames in slices(batch_frames, height * width):
                transformer_block_(block, tokens[frames], keys[frames], values[frames])
        x = tokens.view(batch_frames, height, width, channels).permute(0, 3, 1, 2)
        return self.proj_out(x).add_(hidden_states)


class Downsample(nn.Module):
    """Stride-2 3×3 convolution (key ``downsamplers.0.conv``)."""

    def __init__(self, channels: int, padding: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.conv(hidden_states)


class Upsample(nn.Module):
    """Nearest ×2 (or to the skip's size when it is odd) then a 3×3 convolution (key ``upsamplers.0.conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, hidden_states: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        if output_size is None:
            hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest")
        else:
            hidden_states = F.interpolate(hidden_states, size=output_size, mode="nearest")
        return self.conv(hidden_states)


@dataclass(frozen=True)
class BlockSpec:
    """Construction settings shared by every block of one U-Net."""

    temb_channels: int
    groups: int
    eps: float
    cross_attention_dim: int
    norm_across_frames: bool
    motion_kwargs: dict


class DownBlock3D(nn.Module):
    """``layers`` × [ResNet → (spatial transformer) → (motion module)], then an optional downsampler."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        layers: int,
        spec: BlockSpec,
        heads: int | None,
        use_motion: bool,
        add_downsample: bool,
        downsample_padding: int,
    ):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock3D(
                in_channels if i == 0 else out_channels,
                out_channels,
                spec.temb_channels,
                spec.groups,
                spec.eps,
                spec.norm_across_frames,
            )
            for i in range(layers)
        )
        self.attentions = nn.ModuleList(
            SpatialTransformer(out_channels, heads, spec.cross_attention_dim, spec.groups)
            for _ in range(layers if heads is not None else 0)
        )
        self.motion_modules = nn.ModuleList(
            MotionModule(out_channels, **spec.motion_kwargs) for _ in range(layers if use_motion else 0)
        )
        self.downsamplers = nn.ModuleList([Downsample(out_channels, downsample_padding)] if add_downsample else [])

    def forward(
        self, hidden_states: torch.Tensor, temb: torch.Tensor, context: CrossContext, clip: Clip
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns the block output and the skip connections it contributes, in order."""
        skips = []
        for i, resnet in enumerate(self.resnets):
            hidden_states = resnet(hidden_states, temb, clip)
            if self.attentions:
                hidden_states = self.attentions[i](hidden_states, context)
            if self.motion_modules:
                hidden_states = self.motion_modules[i](hidden_states, clip.num_frames, clip.frame_offset)
            skips.append(hidden_states)
        if self.downsamplers:
            hidden_states = self.downsamplers[0](hidden_states)
            skips.append(hidden_states)
        return hidden_states, skips


class MidBlock3D(nn.Module):
    """ResNet → [spatial transformer → (motion module, AnimateDiff v2 only) → ResNet]."""

    def __init__(self, channels: int, spec: BlockSpec, heads: int, use_motion: bool, output_scale_factor: float):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock3D(
                channels,
                channels,
                spec.temb_channels,
                spec.groups,
                spec.eps,
                spec.norm_across_frames,
                output_scale_factor,
            )
            for _ in range(2)
        )
        self.attentions = nn.ModuleList([SpatialTransformer(channels, heads, spec.cross_attention_dim, spec.groups)])
        self.motion_modules = nn.ModuleList([MotionModule(channels, **spec.motion_kwargs)] if use_motion else [])

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor, context: CrossContext, clip: Clip) -> torch.Tensor:
        hidden_states = self.resnets[0](hidden_states, temb, clip)
        hidden_states = self.attentions[0](hidden_states, context)
        if self.motion_modules:
            hidden_states = self.motion_modules[0](hidden_states, clip.num_frames, clip.frame_offset)
        return self.resnets[1](hidden_states, temb, clip)


class UpBlock3D(nn.Module):
    """``layers`` × [concat skip → ResNet → (spatial transformer) → (motion module)], then an optional upsampler."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        prev_output_channels: int,
        layers: int,
        spec: BlockSpec,
        heads: int | None,
        use_motion: bool,
        add_upsample: bool,
    ):
        super().__init__()
        resnets = []
        for i in range(layers):
            skip_channels = in_channels if i == layers - 1 else out_channels
            resnet_in = prev_output_channels if i == 0 else out_channels
            resnets.append(
                ResnetBlock3D(
                    resnet_in + skip_channels,
                    out_channels,
                    spec.temb_channels,
                    spec.groups,
                    spec.eps,
                    spec.norm_across_frames,
                )
            )
        self.resnets = nn.ModuleList(resnets)
        self.attentions = nn.ModuleList(
            SpatialTransformer(out_channels, heads, spec.cross_attention_dim, spec.groups)
            for _ in range(layers if heads is not None else 0)
        )
        self.motion_modules = nn.ModuleList(
            MotionModule(out_channels, **spec.motion_kwargs) for _ in range(layers if use_motion else 0)
        )
        self.upsamplers = nn.ModuleList([Upsample(out_channels)] if add_upsample else [])

    def forward(
        self,
        hidden_states: torch.Tensor,
        skips: list[torch.Tensor],
        temb: torch.Tensor,
        context: CrossContext,
        clip: Clip,
        upsample_size: tuple[int, int] | None,
    ) -> torch.Tensor:
        """``skips`` are consumed last-first, one per ResNet."""
        for i, resnet in enumerate(self.resnets):
            hidden_states = torch.cat([hidden_states, skips.pop()], dim=1)
            hidden_states = resnet(hidden_states, temb, clip)
            if self.attentions:
                hidden_states = self.attentions[i](hidden_states, context)
            if self.motion_modules:
                hidden_states = self.motion_modules[i](hidden_states, clip.num_frames, clip.frame_offset)
        if self.upsamplers:
            hidden_states = self.upsamplers[0](hidden_states, upsample_size)
        return hidden_states
