"""The fp16 load's fast IC-Light merge (half + half) is bit for bit the fp32 merge followed by the cast."""

from __future__ import annotations

import pytest
import torch

from relightvid_core.weights.convert import CONV_IN_WEIGHT, add_iclight_offset
from relightvid_core.weights.load import _merge_and_place


def _wide_range_half(shape, generator):
    # magnitudes from subnormal to overflow, so every rounding case of the fp16 sum occurs
    values = torch.randn(shape, generator=generator) * torch.exp(torch.randn(shape, generator=generator) * 4)
    return values.half()


@pytest.mark.parametrize(
    "key, base_shape, offset_shape",
    [
        ("down_blocks.0.resnets.0.conv1.weight", (32, 16, 3, 3), (32, 16, 3, 3)),
        ("down_blocks.0.attentions.0.proj_in.bias", (4096,), (4096,)),
        (CONV_IN_WEIGHT, (32, 4, 3, 3), (32, 12, 3, 3)),  # widened conv_in: the fp32 path
    ],
)
def test_fp16_merge_equals_fp32_merge_then_cast(key, base_shape, offset_shape):
    generator = torch.Generator().manual_seed(0)
    base, offset = _wide_range_half(base_shape, generator), _wide_range_half(offset_shape, generator)
    fast = _merge_and_place(key, base, offset, torch.float16, "cpu")
    reference = add_iclight_offset(key, base, offset).to(torch.float16)
    assert fast.dtype == torch.float16
    assert torch.equal(fast.view(torch.int16), reference.view(torch.int16))  # bit patterns, inf and NaN included
    if fast.ndim == 4:
        assert fast.is_contiguous(memory_format=torch.channels_last)
