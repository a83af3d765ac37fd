"""Seeded random weights for tiny demo and test networks.

A freshly built U-Net has zero-initialised motion-module output projections (an identity), which would
hide the temporal path; these weights exercise every layer, as the golden vectors' tiny network does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NORM_SCALE_SPREAD = 0.1


@torch.no_grad()
def randomize_weights(model: nn.Module, seed: int) -> nn.Module:
    """Fill every Linear/Conv with uniform(±1/√fan_in) and every norm with 1 + 0.1·N(0,1) scales and
    0.1·N(0,1) shifts, drawn from a generator seeded with ``seed``. Buffers are left alone.

    Returns:
        ``model``, modified in place.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            bound = 1.0 / math.sqrt(module.weight[0].numel())
            for parameter in (module.weight, module.bias):
                if parameter is not None:
                    values = torch.rand(parameter.shape, generator=generator) * 2 * bound - bound
                    parameter.copy_(values)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm)) and module.weight is not None:
            module.weight.copy_(1 + NORM_SCALE_SPREAD * torch.randn(module.weight.shape, generator=generator))
            module.bias.copy_(NORM_SCALE_SPREAD * torch.randn(module.bias.shape, generator=generator))
    return model
