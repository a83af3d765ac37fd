"""RelightVid's 3-D U-Net: IC-Light's SD1.5 "fbc" U-Net applied per frame, with AnimateDiff-style
temporal modules (docs/official_code.md §a).

The constructor takes the official config keys (``configs/inference_fbc.yaml``), so
``RelightVidUNet.from_config(official_dict)`` builds the official network, and state dicts use the
official key names, so real checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn

from .blocks3d import BlockSpec, Clip, CrossContext, DownBlock3D, MidBlock3D, UpBlock3D, group_norm
from .configs import RELIGHTVID_MOTION_KWARGS
from .motion import SinusoidalPositionEncoding

DOWN_BLOCK_TYPES = {"CrossAttnDownBlock3D": True, "DownBlock3D": False}  # name -> has spatial attention
UP_BLOCK_TYPES = {"CrossAttnUpBlock3D": True, "UpBlock3D": False}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class RelightVidUNet(ModelMixin, ConfigMixin):
    """The inflated SD1.5 U-Net with temporal modules.

    Beyond the official keys, ``use_inflated_groupnorm`` (AnimateDiff's name) selects per-frame GroupNorm
    in the ResNets and output norm, as AnimateDiff v2 motion modules expect; RelightVid and AnimateDiff v1
    normalise over all frames of a clip (the default, ``False``).
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = 64,
        in_channels: int = 12,
        out_channels: int = 4,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: Sequence[str] = (
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "DownBlock3D",
        ),
        mid_block_type: str = "UNetMidBlock3DCrossAttn",
        up_block_types: Sequence[str] = ("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels: Sequence[int] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1.0,
        act_fn: str = "silu",
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 768,
        attention_head_dim: int | Sequence[int] = 8,
        use_linear_projection: bool = False,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        use_motion_module: bool = True,
        motion_module_resolutions: Sequence[int] = (1, 2, 4, 8),
        motion_module_mid_block: bool = False,
        motion_module_decoder_only: bool = False,
        motion_module_type: str = "Vanilla",
        motion_module_kwargs: dict | None = None,
        use_inflated_groupnorm: bool = False,
    ):
        super().__init__()
        levels = len(block_out_channels)
        heads_per_level = [attention_head_dim] * levels if isinstance(attention_head_dim, int) else list(attention_head_dim)
        _require(
            len(down_block_types) == levels == len(up_block_types) == len(heads_per_level),
            f"down_block_types ({len(down_block_types)}), up_block_types ({len(up_block_types)}), "
            f"block_out_channels ({levels}) and attention_head_dim ({len(heads_per_level)}) must have equal lengths",
        )
        unknown = [t for t in down_block_types if t not in DOWN_BLOCK_TYPES] + [
            t for t in up_block_types if t not in UP_BLOCK_TYPES
        ]
        _require(not unknown, f"unknown block types {unknown}")
        _require(mid_block_type == "UNetMidBlock3DCrossAttn", f"unknown mid_block_type {mid_block_type!r}")
        _require(act_fn in ("silu", "swish"), f"act_fn {act_fn!r} is not supported; SD1.5 uses 'silu'")
        _require(not use_linear_projection, "use_linear_projection=True is not supported; SD1.5 uses 1x1 convolutions")
        _require(resnet_time_scale_shift == "default", "only resnet_time_scale_shift='default' is supported")
        _require(motion_module_type == "Vanilla", f"unknown motion_module_type {motion_module_type!r}")
        _require(not upcast_attention, "upcast_attention is not supported (SD1.5 does not use it)")

        motion_kwargs = dict(RELIGHTVID_MOTION_KWARGS if motion_module_kwargs is None else motion_module_kwargs)
        time_embed_dim = block_out_channels[0] * 4
        spec = BlockSpec(
            temb_channels=time_embed_dim,
            groups=norm_num_groups,
            eps=norm_eps,
            cross_attention_dim=cross_attention_dim,
            norm_across_frames=not use_inflated_groupnorm,
            motion_kwargs=motion_kwargs,
        )

        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], 3, padding=1)
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim)

        self.down_blocks = nn.ModuleList()
        output_channels = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            input_channels, output_channels = output_channels, block_out_channels[i]
            self.down_blocks.append(
                DownBlock3D(
                    input_channels,
                    output_channels,
                    layers_per_block,
                    spec,
                    heads=heads_per_level[i] if DOWN_BLOCK_TYPES[block_type] else None,
                    use_motion=use_motion_module
                    and not motion_module_decoder_only
                    and 2**i in motion_module_resolutions,
                    add_downsample=i < levels - 1,
                    downsample_padding=downsample_padding,
                )
            )

        self.mid_block = MidBlock3D(
            block_out_channels[-1],
            spec,
            heads=heads_per_level[-1],
            use_motion=use_motion_module and motion_module_mid_block,
            output_scale_factor=mid_block_scale_factor,
        )

        self.up_blocks = nn.ModuleList()
        reversed_channels = list(reversed(block_out_channels))
        reversed_heads = list(reversed(heads_per_level))
        output_channels = reversed_channels[0]
        for i, block_type in enumerate(up_block_types):
            prev_output_channels, output_channels = output_channels, reversed_channels[i]
            self.up_blocks.append(
                UpBlock3D(
                    in_channels=reversed_channels[min(i + 1, levels - 1)],
                    out_channels=output_channels,
                    prev_output_channels=prev_output_channels,
                    layers=layers_per_block + 1,
                    spec=spec,
                    heads=reversed_heads[i] if UP_BLOCK_TYPES[block_type] else None,
                    # Upstream hard-codes the decoder "resolution" as 2**(3 - i) (docs/official_code.md §e.7).
                    use_motion=use_motion_module and 2 ** (levels - 1 - i) in motion_module_resolutions,
                    add_upsample=i < levels - 1,
                )
            )

        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=norm_eps)
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, 3, padding=1)
        self.to(memory_format=torch.channels_last)

    @property
    def max_frames(self) -> int:
        """Frames one forward can take: the length of the temporal position encoding (32 for RelightVid)."""
        encodings = [m for m in self.modules() if isinstance(m, SinusoidalPositionEncoding)]
        return min((m.max_len for m in encodings), default=2**31)

    def reset_position_encodings(self) -> None:
        """Overwrite every ``pos_encoder.pe`` with the model's own sinusoid (what official loaders do)."""
        for module in self.modules():
            if isinstance(module, SinusoidalPositionEncoding):
                module.reset_table()

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        frame_offset: int = 0,
        hdr_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise of a batch of clips.

        Args:
            sample: (B, C_in, F, h, w) latents; C_in = noisy(4) | foreground(4) | background(4) for fbc.
            timestep: a scalar, or one timestep per batch item (B,).
            encoder_hidden_states: (B, tokens, cross_attention_dim) text context, shared by a clip's frames.
            frame_offset: index of the first frame in the temporal position encoding; offset + F must not
                exceed :attr:`max_frames`.
            hdr_tokens: optional (B, F, n, cross_attention_dim) per-frame environment tokens appended after
                the text tokens in every spatial cross-attention (the paper's HDR conditioning).

        Returns:
            (B, out_channels, F, h, w) noise prediction, contiguous.
        """
        if sample.ndim != 5:
            raise ValueError(f"sample must be (batch, channels, frames, height, width); got shape {tuple(sample.shape)}")
        batch, channels, frames, height, width = sample.shape
        if channels != self.config.in_channels:
            raise ValueError(f"sample has {channels} channels; this U-Net takes {self.config.in_channels}")
        if frames < 1:
            raise ValueError("sample has 0 frames")
        if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[0] != batch:
            raise ValueError(
                f"encoder_hidden_states must be ({batch}, tokens, {self.config.cross_attention_dim}); "
                f"got shape {tuple(encoder_hidden_states.shape)}"
            )
        clip = Clip(num_frames=frames, frame_offset=frame_offset)
        dtype = self.conv_in.weight.dtype

        # 1. time
        temb = self.time_embedding(self.time_proj(self._timesteps(timestep, batch, sample.device)).to(dtype))

        # 2. fold frames into the batch (B outer, F inner), channels-last; the text stays one row per clip
        hidden_states = rearrange(sample.to(dtype), "b c f h w -> (b f) h w c").permute(0, 3, 1, 2)
        per_frame = None
        if hdr_tokens is not None:
            context_width = encoder_hidden_states.shape[-1]
            if hdr_tokens.shape[:2] != (batch, frames) or hdr_tokens.shape[-1] != context_width:
                raise ValueError(f"hdr_tokens must be ({batch}, {frames}, n, {context_width}); got {tuple(hdr_tokens.shape)}")
            per_frame = hdr_tokens.to(dtype).flatten(0, 1)
        context = CrossContext(encoder_hidden_states.to(dtype), frames, per_frame)

        # 3. down
        hidden_states = self.conv_in(hidden_states)
        skips = [hidden_states]
        for block in self.down_blocks:
            hidden_states, block_skips = block(hidden_states, temb, context, clip)
            skips.extend(block_skips)

        # 4. mid
        hidden_states = self.mid_block(hidden_states, temb, context, clip)

        # 5. up; odd latent sizes take the next skip's size instead of a plain ×2
        upsample_factor = 2 ** (len(self.up_blocks) - 1)
        forward_size = height % upsample_factor != 0 or width % upsample_factor != 0
        for i, block in enumerate(self.up_blocks):
            remaining = skips[: len(skips) - len(block.resnets)]
            upsample_size = tuple(remaining[-1].shape[-2:]) if forward_size and remaining else None
            hidden_states = block(hidden_states, skips, temb, context, clip, upsample_size)

        # 6. out
        hidden_states = F.silu(group_norm(self.conv_norm_out, hidden_states, frames, not self.config.use_inflated_groupnorm))
        hidden_states = self.conv_out(hidden_states)
        return rearrange(hidden_states, "(b f) c h w -> b c f h w", b=batch).contiguous()

    @staticmethod
    def _timesteps(timestep: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:
        timesteps = torch.as_tensor(timestep, device=device)
        if timesteps.ndim == 0:
            timesteps = timesteps[None]
        if timesteps.ndim != 1 or batch % timesteps.shape[0]:
            raise ValueError(f"timestep must be a scalar or have one value per batch item ({batch}); got {tuple(timesteps.shape)}")
        return timesteps.repeat(batch // timesteps.shape[0])
