"""Temporal ("motion") module: self-attention over the frames at every spatial position.

Key names follow the AnimateDiff / RelightVid checkpoints exactly
(``temporal_transformer.transformer_blocks.0.attention_blocks.{i}.to_q`` ...), see docs/official_code.md §a.3.

Layout inside the U-Net: hidden states are folded frames, ``(B*F, C, h, w)`` with the batch outer and
frames inner, normally in channels-last memory format so that the token view ``(B*F, h*w, C)`` is free.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import nn

from .chunks import slices

# The motion module's GroupNorm ignores the U-Net's norm_num_groups (docs/official_code.md §e.3).
MOTION_NORM_GROUPS = 32
MOTION_NORM_EPS = 1e-6
SUPPORTED_ATTENTION_BLOCKS = ("Temporal_Self",)


def sinusoidal_position_table(length: int, channels: int) -> torch.Tensor:
    """Transformer sinusoid, shape (1, length, channels), float32.

    Even channels hold sin(p·ω_i), odd channels cos(p·ω_i), ω_i = exp(2i·(−ln 10000)/C). The exponent is
    an integer range times a float32 scalar, as upstream builds it, so the table is bit-identical to the
    one stored in official checkpoints (a float64 build differs by up to 8e-7).
    """
    position = torch.arange(length).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, channels, 2) * (-math.log(10000.0) / channels))
    table = torch.zeros(1, length, channels)
    table[0, :, 0::2] = torch.sin(position * frequencies)
    table[0, :, 1::2] = torch.cos(position * frequencies)
    return table


class SinusoidalPositionEncoding(nn.Module):
    """Holds the persistent ``pe`` buffer (it is part of official state dicts) and adds it per frame."""

    def __init__(self, channels: int, max_len: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_position_table(max_len, channels))

    @property
    def max_len(self) -> int:
        return self.pe.shape[1]

    def reset_table(self) -> None:
        """Recompute the sinusoid in place; official loaders discard checkpoint values (docs/official_code.md §b.4)."""
        table = sinusoidal_position_table(self.pe.shape[1], self.pe.shape[2])
        self.pe.copy_(table.to(self.pe.dtype))

    def frames(self, num_frames: int, frame_offset: int) -> torch.Tensor:
        """Rows ``frame_offset .. frame_offset + num_frames`` of the table, shape (num_frames, C)."""
        if frame_offset < 0 or frame_offset + num_frames > self.max_len:
            raise ValueError(
                f"frames {frame_offset}..{frame_offset + num_frames - 1} exceed the temporal position encoding "
                f"of length {self.max_len}; sample at most {self.max_len} frames per call (use context windows)"
            )
        return self.pe[0, frame_offset : frame_offset + num_frames]


class TemporalSelfAttention(Attention):
    """diffusers ``Attention`` over the frame axis, with the position encoding it owns.

    The encoding is added to the normalised tokens inside the block and never enters the residual stream.
    """

    def __init__(self, channels: int, heads: int, max_len: int):
        super().__init__(query_dim=channels, heads=heads, dim_head=channels // heads, bias=False)
        self.pos_encoder = SinusoidalPositionEncoding(channels, max_len)

    def forward(self, tokens: torch.Tensor, num_frames: int, frame_offset: int = 0) -> torch.Tensor:
        """Args: tokens (B*F, N, C) normalised. Returns (B*F, N, C), the attention output only."""
        batch_frames, num_tokens, channels = tokens.shape
        batch = batch_frames // num_frames
        position = self.pos_encoder.frames(num_frames, frame_offset).to(tokens.dtype)
        regrouped = tokens.view(batch, num_frames, num_tokens, channels).transpose(1, 2)
        if torch.is_grad_enabled() and (tokens.requires_grad or position.requires_grad):
            # Autograd cannot record out= (a caller tracing gradients, e.g. a guidance that needs them).
            sequences = (regrouped + position).contiguous()
        else:
            # One pass adds the encoding and regroups the tokens into per-position sequences (B, N, F, C).
            sequences = torch.empty(batch, num_tokens, num_frames, channels, dtype=tokens.dtype, device=tokens.device)
            torch.add(regrouped, position, out=sequences)
        sequences = sequences.view(batch * num_tokens, num_frames, channels)

        # Heads folded into the batch: with sequences this short (F ≤ 32) the 3-D SDPA call is about twice
        # as fast on CPU as the 4-D one, whose flash kernel is tuned for long sequences.
        def split_heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(-1, num_frames, self.heads, channels // self.heads).transpose(1, 2).flatten(0, 1)

        attended = F.scaled_dot_product_attention(
            split_heads(self.to_q(sequences)), split_heads(self.to_k(sequences)), split_heads(self.to_v(sequences))
        )
        attended = attended.view(batch * num_tokens, self.heads, num_frames, -1).transpose(1, 2)
        attended = attended.reshape(batch, num_tokens, num_frames, channels)
        attended = self.to_out[0](attended)
        return attended.transpose(1, 2).reshape(batch_frames, num_tokens, channels)


class TemporalTransformerBlock(nn.Module):
    """Two pre-norm temporal self-attentions and a GEGLU feed-forward, each with a residual."""

    def __init__(self, channels: int, heads: int, attention_block_types: list[str], max_len: int):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            TemporalSelfAttention(channels, heads, max_len) for _ in attention_block_types
        )
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in attention_block_types)
        self.ff = FeedForward(channels, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(channels)

    def forward(self, tokens: torch.Tensor, num_frames: int, frame_offset: int) -> torch.Tensor:
        """Args: tokens (B*F, N, C). Returns a new (B*F, N, C) tensor; ``tokens`` is left unchanged."""
        return self.update_(tokens.clone(), num_frames, frame_offset)

    def update_(self, tokens: torch.Tensor, num_frames: int, frame_offset: int) -> torch.Tensor:
        """:meth:`forward` written into ``tokens``, a few spatial positions at a time.

        Every layer here mixes tokens only across the frames of one position, so slicing the positions
        (:func:`~relightvid_core.models.chunks.slices`) keeps the intermediates small; adding each
        residual in place gives the same sums as ``output + tokens``.
        """
        for positions in slices(tokens.shape[1], tokens.shape[0]):
            part = tokens[:, positions]
            for attention, norm in zip(self.attention_blocks, self.norms):
                part.add_(attention(norm(part), num_frames, frame_offset))
            part.add_(self.ff(self.ff_norm(part)))
        return tokens


class TemporalTransformer(nn.Module):
    """GroupNorm (per frame) → Linear in → temporal blocks → Linear out, added to the input."""

    def __init__(self, channels: int, heads: int, num_blocks: int, attention_block_types: list[str], max_len: int):
        super().__init__()
        self.norm = nn.GroupNorm(MOTION_NORM_GROUPS, channels, eps=MOTION_NORM_EPS)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            TemporalTransformerBlock(channels, heads, attention_block_types, max_len) for _ in range(num_blocks)
        )
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, hidden_states: torch.Tensor, num_frames: int, frame_offset: int = 0) -> torch.Tensor:
        """Args: hidden_states (B*F, C, h, w). Returns the same shape, in channels-last memory format."""
        batch_frames, channels, height, width = hidden_states.shape
        tokens = self.norm(hidden_states).permute(0, 2, 3, 1).reshape(batch_frames, height * width, channels)
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            block.update_(tokens, num_frames, frame_offset)
        tokens = self.proj_out(tokens)
        return tokens.view(batch_frames, height, width, channels).permute(0, 3, 1, 2).add_(hidden_states)


class MotionModule(nn.Module):
    """AnimateDiff "Vanilla" temporal module; the wrapper level exists only for the checkpoint key names."""

    def __init__(
        self,
        channels: int,
        num_attention_heads: int = 8,
        num_transformer_block: int = 1,
        attention_block_types: tuple[str, ...] | list[str] = ("Temporal_Self", "Temporal_Self"),
        temporal_position_encoding: bool = True,
        temporal_position_encoding_max_len: int = 32,
        temporal_attention_dim_div: int = 1,
        zero_initialize: bool = True,
    ):
        super().__init__()
        unsupported = [name for name in attention_block_types if name not in SUPPORTED_ATTENTION_BLOCKS]
        if unsupported or not temporal_position_encoding or temporal_attention_dim_div != 1:
            raise ValueError(
                "only the released motion-module layout is supported (attention blocks 'Temporal_Self', "
                "temporal_position_encoding=True, temporal_attention_dim_div=1); got "
                f"attention_block_types={list(attention_block_types)}, temporal_position_encoding="
                f"{temporal_position_encoding}, temporal_attention_dim_div={temporal_attention_dim_div}"
            )
        if channels % num_attention_heads or channels % MOTION_NORM_GROUPS:
            raise ValueError(
                f"motion-module channels {channels} must be divisible by its {num_attention_heads} heads and by "
                f"its {MOTION_NORM_GROUPS} GroupNorm groups"
            )
        self.temporal_transformer = TemporalTransformer(
            channels,
            num_attention_heads,
            num_transformer_block,
            list(attention_block_types),
            temporal_position_encoding_max_len,
        )
        if zero_initialize:
            # A fresh module is an identity, so a new one never disturbs a pretrained image U-Net.
            nn.init.zeros_(self.temporal_transformer.proj_out.weight)
            nn.init.zeros_(self.temporal_transformer.proj_out.bias)

    def forward(self, hidden_states: torch.Tensor, num_frames: int, frame_offset: int = 0) -> torch.Tensor:
        return self.temporal_transformer(hidden_states, num_frames, frame_offset)
