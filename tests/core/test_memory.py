"""Token chunking leaves the U-Net's output unchanged; the fake-tensor memory trace agrees with real tensors."""

from __future__ import annotations

import pytest
import torch

from relightvid_core import TINY, RelightVidUNet
from relightvid_core.models import chunks
from relightvid_core.models.memory import trace_peak
from relightvid_core.models.random_init import randomize_weights
from relightvid_core.sampling.memory import activation_bytes, max_batch_for_memory


@pytest.fixture(scope="module")
def tiny_unet():
    return randomize_weights(RelightVidUNet.from_config(TINY), seed=3).eval()


def _inputs(frames: int = 4, size: int = 16, hdr: bool = False):
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 12, frames, size, size, generator=generator)
    context = torch.randn(2, 7, TINY["cross_attention_dim"], generator=generator)
    tokens = torch.randn(2, frames, 3, TINY["cross_attention_dim"], generator=generator) if hdr else None
    return sample, torch.tensor([10, 700]), context, tokens


def test_slices_cover_every_item_within_the_budget(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_TOKENS", 100)
    parts = chunks.slices(10, 30)
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert chunks.slices(5, 1000) == [slice(i, i + 1) for i in range(5)]  # at least one item per slice


@pytest.mark.parametrize("hdr", [False, True])
def test_chunked_forward_equals_one_chunk(tiny_unet, monkeypatch, hdr):
    sample, timesteps, context, tokens = _inputs(hdr=hdr)
    with torch.no_grad():
        whole = tiny_unet(sample, timesteps, context, hdr_tokens=tokens)
        monkeypatch.setattr(chunks, "CHUNK_TOKENS", 50)  # every level runs in several slices
        sliced = tiny_unet(sample, timesteps, context, hdr_tokens=tokens)
    torch.testing.assert_close(sliced, whole, atol=1e-5, rtol=0)


def test_temporal_block_forward_leaves_its_input_unchanged(tiny_unet):
    block = tiny_unet.down_blocks[0].motion_modules[0].temporal_transformer.transformer_blocks[0]
    tokens = torch.randn(8, 5, TINY["block_out_channels"][0])
    before = tokens.clone()
    with torch.no_grad():
        out = block(tokens, num_frames=4, frame_offset=0)
    assert torch.equal(tokens, before) and not torch.equal(out, before)


def test_fake_trace_equals_the_same_trace_on_real_tensors(tiny_unet):
    def run(model):
        sample, timesteps, context, _ = _inputs(frames=3, size=8)
        return model(sample, timesteps, context)

    with torch.device("meta"):
        meta_model = RelightVidUNet.from_config(TINY).eval()
    fake = trace_peak(meta_model, run)
    real = trace_peak(tiny_unet, run, fake=False)
    weights = sum(t.numel() * t.element_size() for t in [*tiny_unet.parameters(), *tiny_unet.buffers()])
    assert fake.weights == real.weights == weights
    assert fake.peak == real.peak > weights
    assert fake.peak_module == real.peak_module != ""


def test_auto_memory_mode_splits_the_branches_by_the_estimate(tiny_unet):
    per_item = activation_bytes(tiny_unet, frames=2, height=8, width=8)
    assert per_item > 0
    assert max_batch_for_memory(tiny_unet, 3, 2, 8, 8, free_bytes=3 * per_item) is None  # all in one call
    assert max_batch_for_memory(tiny_unet, 3, 2, 8, 8, free_bytes=2 * per_item + 1) == 2
    assert max_batch_for_memory(tiny_unet, 3, 2, 8, 8, free_bytes=0) == 1  # never fewer than one branch
