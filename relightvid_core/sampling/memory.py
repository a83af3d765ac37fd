"""Memory mode ``auto``: how many guidance branches one U-Net call may take, from the traced estimate.

The estimate is :func:`~relightvid_core.models.memory.trace_peak` of one batch-1 forward of the same
network at the run's size, on fake tensors (no memory used; a few seconds for the full-size network,
once per size and process). Activations grow at most linearly with the batch (the chunked layers'
slices are fixed-size), so ``k ×`` the batch-1 activations bounds a batch-``k`` call from above.
"""

from __future__ import annotations

import functools
import json

import torch
from torch import nn

from ..models.memory import trace_peak


@functools.lru_cache(maxsize=16)
def _activation_bytes(config_json: str, dtype: torch.dtype, frames: int, height: int, width: int, tokens: int) -> int:
    from ..models.unet3d import RelightVidUNet  # here, not at the top: it imports diffusers, seconds at start-up

    config = json.loads(config_json)
    with torch.device("meta"):
        model = RelightVidUNet.from_config(config).to(dtype).eval()

    def run(unet: nn.Module) -> torch.Tensor:
        sample = torch.zeros(1, config["in_channels"], frames, height, width, dtype=dtype)
        context = torch.zeros(1, tokens, config["cross_attention_dim"], dtype=dtype)
        return unet(sample, torch.tensor([500]), context)

    return trace_peak(model, run).activations


def activation_bytes(unet: nn.Module, frames: int, height: int, width: int, tokens: int = 77) -> int:
    """Estimated peak bytes above the weights of one batch-1 forward of ``unet`` at this size."""
    config = {key: value for key, value in dict(unet.config).items() if not key.startswith("_")}
    dtype = next(unet.parameters()).dtype
    return _activation_bytes(json.dumps(config, sort_keys=True), dtype, frames, height, width, tokens)


def max_batch_for_memory(
    unet: nn.Module, items: int, frames: int, height: int, width: int, free_bytes: int, tokens: int = 77
) -> int | None:
    """The ``max_batch`` for ``items`` branches when ``free_bytes`` are free beside the loaded weights.

    Returns None (all branches in one call) when they fit, else the largest batch that does (at least 1).
    """
    return batch_that_fits(items, activation_bytes(unet, frames, height, width, tokens), free_bytes)


def batch_that_fits(items: int, per_item: int, free_bytes: int) -> int | None:
    """None when ``items`` calls of ``per_item`` bytes fit in ``free_bytes`` at once, else how many do (at least 1)."""
    fit = max(1, free_bytes // max(1, per_item))
    return None if fit >= items else int(fit)
