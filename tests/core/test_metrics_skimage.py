"""PSNR and SSIM cross-checked against scikit-image, the reference implementation, on textured clips."""

from __future__ import annotations

import numpy as np
import pytest

from relightvid_core.metrics import psnr, psnr_per_frame, ssim, ssim_per_frame

skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is in the test extra")

# Both sides compute in float64 with the same window, constants and borders, so only summation order differs
# (measured: 7e-16). The window: kornia's ssim samples a σ = 1.5 Gaussian over SSIM_WINDOW = 11 taps;
# scikit-image's gaussian_weights=True, sigma=1.5 truncates at 3.5 σ, which is 2·int(3.5·1.5 + 0.5) + 1 = 11
# taps too. Both average only the pixels at least 5 px from the border (kornia's padding="valid", scikit-image's
# crop), and kornia's eps is 0, so the constants are Wang et al.'s alone.
TOLERANCE = 1e-10


def _textured_clips(frames: int = 3, height: int = 48, width: int = 72) -> tuple[np.ndarray, np.ndarray]:
    """A clip of smooth structure plus fine noise, and a distorted copy (gain, shift, noise, a dark patch)."""
    generator = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    clip, distorted = [], []
    for t in range(frames):
        base = 0.5 + 0.3 * np.sin(2 * np.pi * (x + 3 * t) / 23) * np.cos(2 * np.pi * y / 17)
        frame = np.stack([base, base**2, 1.0 - base], axis=-1) + generator.normal(0.0, 0.05, (height, width, 3))
        frame = np.clip(frame, 0.0, 1.0)
        other = np.clip(0.9 * np.roll(frame, 1, axis=1) + 0.03 + generator.normal(0.0, 0.03, frame.shape), 0, 1)
        other[10:20, 30:50] *= 0.4
        clip.append(frame)
        distorted.append(other)
    return np.stack(distorted), np.stack(clip)


def _skimage_ssim(video: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.array(
        [
            skimage_metrics.structural_similarity(
                x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
            )
            for x, y in zip(reference, video, strict=True)
        ]
    )


def test_ssim_matches_skimage_per_frame_and_per_clip():
    video, reference = _textured_clips()
    expected = _skimage_ssim(video, reference)
    assert 0.2 < expected.min() < expected.max() < 0.95  # a real distortion, not a trivial case
    np.testing.assert_allclose(ssim_per_frame(video, reference), expected, rtol=0, atol=TOLERANCE)
    assert ssim(video, reference) == pytest.approx(expected.mean(), abs=TOLERANCE)


def test_psnr_matches_skimage_on_the_whole_clip_and_per_frame():
    video, reference = _textured_clips()
    assert psnr(video, reference) == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(reference, video, data_range=1.0), abs=TOLERANCE
    )
    expected = [skimage_metrics.peak_signal_noise_ratio(y, x, data_range=1.0) for x, y in zip(video, reference)]
    np.testing.assert_allclose(psnr_per_frame(video, reference), expected, rtol=0, atol=TOLERANCE)
