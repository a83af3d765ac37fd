"""Small sampler inputs and a spy recording what every U-Net call received."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from relightvid_core import TINY

CONTEXT_WIDTH = TINY["cross_attention_dim"]
TOKENS = 5  # any token count works; CLIP's 77 only costs time here


def sampler_inputs(batch: int = 1, frames: int = 2, size: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """Keyword arguments for ``sample``: latents (B, F, 4, s, s), img_cond (B, F, 8, s, s), text embeddings."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "latents": torch.randn(batch, frames, 4, size, size, generator=generator),
        "img_cond": torch.randn(batch, frames, 8, size, size, generator=generator),
        "text_cond": torch.randn(batch, TOKENS, CONTEXT_WIDTH, generator=generator),
        "text_uncond": torch.randn(batch, TOKENS, CONTEXT_WIDTH, generator=generator),
    }


def frame_numbered(batch: int, frames: int, channels: int, size: int) -> torch.Tensor:
    """(B, F, C, s, s) whose every value is its frame index: shows which frames a call received."""
    numbers = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1, 1)
    return numbers.expand(batch, frames, channels, size, size).clone()


@dataclass
class Call:
    sample: torch.Tensor  # (B, C, F, h, w) as the U-Net received it
    context: torch.Tensor
    hdr_tokens: torch.Tensor | None
    frame_offset: int


@dataclass
class UNetSpy:
    """Records every forward of ``unet`` (a forward pre-hook: the network itself is unchanged)."""

    unet: torch.nn.Module
    calls: list[Call] = field(default_factory=list)

    def __enter__(self) -> UNetSpy:
        self._handle = self.unet.register_forward_pre_hook(self._record, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    def _record(self, module, args, kwargs) -> None:
        sample = args[0]
        context = kwargs["encoder_hidden_states"] if "encoder_hidden_states" in kwargs else args[2]
        hdr = kwargs.get("hdr_tokens")
        hdr = None if hdr is None else hdr.clone()
        self.calls.append(Call(sample.clone(), context.clone(), hdr, kwargs.get("frame_offset", 0)))

    def batch_sizes(self) -> list[int]:
        return [call.sample.shape[0] for call in self.calls]
