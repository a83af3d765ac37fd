"""Chunked VAE helpers with a tiny AutoencoderKL: shapes, scaling, chunked == unchunked, errors."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL

from relightvid_core.errors import InputError
from relightvid_core.vae import SD_LATENT_SCALE, decode_latents, encode_frames

# Batch size changes convolution summation order, so chunked and whole-clip results differ by rounding only.
CHUNK_ATOL = 1e-5


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    # Four encoder blocks downsample three times, by 8 as SD's VAE; 8 channels keep it tiny.
    return AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    ).eval()


@pytest.fixture(scope="module")
def frames():
    return torch.rand(5, 16, 24, 3, generator=torch.Generator().manual_seed(0))


def test_encode_shapes_and_posterior_mean_scaling(vae, frames):
    latents = encode_frames(vae, frames, chunk_size=5)
    assert latents.shape == (5, 4, 2, 3)
    with torch.no_grad():
        mean = vae.encode(frames.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mean
    torch.testing.assert_close(latents, mean * SD_LATENT_SCALE, atol=CHUNK_ATOL, rtol=0)


def test_chunked_encode_equals_unchunked(vae, frames):
    chunked, whole = encode_frames(vae, frames, chunk_size=2), encode_frames(vae, frames, chunk_size=5)
    torch.testing.assert_close(chunked, whole, atol=CHUNK_ATOL, rtol=0)


def test_chunked_decode_equals_unchunked_and_is_an_image(vae, frames):
    latents = encode_frames(vae, frames)
    one = decode_latents(vae, latents, chunk_size=1)
    all_at_once = decode_latents(vae, latents, chunk_size=5)
    assert one.shape == (5, 16, 24, 3) and 0.0 <= float(one.min()) and float(one.max()) <= 1.0
    torch.testing.assert_close(one, all_at_once, atol=CHUNK_ATOL, rtol=0)


def test_all_black_clip_can_encode_as_zero_latent(vae):
    black = torch.zeros(3, 16, 16, 3)
    assert torch.equal(encode_frames(vae, black, black_as_zero=True), torch.zeros(3, 4, 2, 2))
    assert encode_frames(vae, black).abs().sum() > 0


def test_sizes_not_multiple_of_8_are_refused(vae):
    with pytest.raises(InputError, match="multiples of 8.*20x12"):
        encode_frames(vae, torch.zeros(1, 12, 20, 3))


def test_zero_frames_and_bad_chunk_are_refused(vae):
    with pytest.raises(InputError, match="T >= 1"):
        encode_frames(vae, torch.zeros(0, 16, 16, 3))
    with pytest.raises(InputError, match="chunk_size must be at least 1"):
        decode_latents(vae, torch.zeros(1, 4, 2, 2), chunk_size=0)


def test_encode_and_decode_report_progress_per_chunk(vae, frames):
    encoded, decoded = [], []
    latents = encode_frames(vae, frames, chunk_size=2, progress=lambda done, total: encoded.append((done, total)))
    decode_latents(vae, latents, chunk_size=3, progress=lambda done, total: decoded.append((done, total)))
    assert encoded == [(2, 5), (4, 5), (5, 5)] and decoded == [(3, 5), (5, 5)]
