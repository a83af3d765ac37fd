"""Evaluate guidance branches on the U-Net: the one place that calls it, in one batch or in several.

A branch is one way of conditioning the same noisy latents (image condition, text context, HDR tokens).
Batch items never interact inside the U-Net (its GroupNorms span frames, never clips), so splitting the
branches over several calls changes memory and speed only, not the numbers (up to kernel rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError, SamplingInterrupted
from .checks import is_whole_number

# On the CPU a batch beyond one guidance step's 3 items gains nothing and overflows the caches: measured
# 8-9 % more time per item at 11 items than at 3 (bench/bench_sampler.py, small config, 1 and 2 threads).
CPU_BATCH_ITEMS = 3

BranchFn = Callable[[torch.Tensor, torch.Tensor, Sequence["Branch"]], list[torch.Tensor]]
"""``branch_fn(x, t, branches) -> eps per branch``: x (B, F, 4, h, w); each eps (B, F, 4, h, w) float32."""


@dataclass(frozen=True)
class Branch:
    """One conditioning of the latents.

    Attributes:
        image: (B, F, C_img, h, w) image condition in the U-Net's dtype, or None for the dropped condition
            (zeros, as in training and in the official unconditional branch).
        context: (B, tokens, D) text embeddings.
        hdr: (B, F, n, D) per-frame HDR tokens, or None when the run has no HDR condition.
    """

    image: torch.Tensor | None
    context: torch.Tensor
    hdr: torch.Tensor | None = None


def _model_input(x: torch.Tensor, branch: Branch, image_channels: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, F, 4 + C_img, h, w): the latents with the branch's image condition on the channel axis."""
    x = x.to(dtype)
    image = branch.image if branch.image is not None else x.new_zeros(*x.shape[:2], image_channels, *x.shape[3:])
    return torch.cat([x, image], dim=2)


@dataclass(frozen=True)
class UNetBranches:
    """The U-Net as a :data:`BranchFn`.

    Attributes:
        unet: a :class:`~relightvid_core.RelightVidUNet` (or a module with its ``forward`` signature).
        max_batch: U-Net batch items (clips) per call; smaller values split the branches over several calls
            for small GPUs (1: one clip per call). None chooses by device: everything in one call on an
            accelerator, at most :data:`CPU_BATCH_ITEMS` per call on the CPU.
        should_interrupt: called before every U-Net call; returning True raises :class:`SamplingInterrupted`.
    """

    unet: nn.Module
    max_batch: int | None = None
    should_interrupt: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        if self.max_batch is not None and not (is_whole_number(self.max_batch) and self.max_batch >= 1):
            raise InputError(f"max_batch must be None (automatic) or an integer >= 1; got {self.max_batch!r}.")

    def batch_size(self, items: int, device: torch.device) -> int:
        """U-Net batch items per call for ``items`` branches on ``device``."""
        if self.max_batch is not None:
            return self.max_batch
        return min(items, CPU_BATCH_ITEMS) if device.type == "cpu" else items

    def __call__(self, x: torch.Tensor, t: torch.Tensor, branches: Sequence[Branch]) -> list[torch.Tensor]:
        """Noise predictions of every branch for latents ``x`` (B, F, 4, h, w) at timestep ``t`` (0-d).

        Returns:
            one (B, F, 4, h, w) float32 tensor per branch, in the order given.
        """
        parameter = next(self.unet.parameters())
        image_channels = self.unet.config.in_channels - x.shape[2]
        sample = torch.cat([_model_input(x, b, image_channels, parameter.dtype) for b in branches])
        context = torch.cat([b.context for b in branches])
        has_hdr = branches[0].hdr is not None
        hdr = torch.cat([b.hdr for b in branches]) if has_hdr else None
        size = self.batch_size(sample.shape[0], parameter.device)
        outputs = []
        for start in range(0, sample.shape[0], size):
            if self.should_interrupt is not None and self.should_interrupt():
                raise SamplingInterrupted("sampling was interrupted by the caller.")
            chunk = slice(start, start + size)
            eps = self.unet(
                sample[chunk].transpose(1, 2),  # the U-Net takes (B, C, F, h, w)
                t,
                encoder_hidden_states=context[chunk],
                hdr_tokens=hdr[chunk] if has_hdr else None,
            )
            outputs.append(eps.transpose(1, 2).float())
        return list(torch.cat(outputs).chunk(len(branches)))
