"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from relightvid_core.errors import InputError
from relightvid_core.metrics import (
    VideoMetrics,
    flicker_index,
    optical_flow,
    psnr,
    ssim,
    video_metrics,
    warp_error,
)

SIZE = 64
SSIM_K1 = 0.01  # Wang et al. 2004's K1, the one kornia's SSIM uses
# Farnebäck's flow is sub-pixel accurate, not exact, so warping leaves interpolation residue.
WARP_TOLERANCE = 2e-3


def _texture(shift: float = 0.0) -> np.ndarray:
    """(SIZE, SIZE, 3) smooth periodic pattern moved ``shift`` pixels to the right."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    value = 0.5 + 0.25 * np.sin(2 * np.pi * (x - shift) / 32) + 0.2 * np.cos(2 * np.pi * y / 16)
    return np.stack([value, 0.8 * value, 1.0 - value], axis=-1)


def _flat(values: list[float]) -> np.ndarray:
    return np.stack([np.full((8, 8, 3), v) for v in values])


def test_psnr_identical_is_inf_and_ssim_one():
    clip = np.stack([_texture(k) for k in range(3)])
    assert psnr(clip, clip) == math.inf
    assert ssim(clip, clip) == 1.0


def test_psnr_of_a_constant_offset():
    clip = np.stack([_texture() * 0.8] * 2)
    # MSE = 0.1² → 10·log10(1/0.01) = 20 dB.
    assert psnr(clip + 0.1, clip) == pytest.approx(20.0, abs=1e-9)


def test_ssim_of_flat_frames_matches_the_formula():
    a, b = 0.3, 0.5
    c1 = SSIM_K1**2
    # No variance: the contrast-structure term is C2/C2 = 1, leaving the luminance term.
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(np.full((2, 16, 16, 3), a), np.full((2, 16, 16, 3), b)) == pytest.approx(expected, abs=1e-12)


def test_flow_of_a_translation_is_the_shift():
    flow = optical_flow(_texture(0), _texture(2))
    centre = flow[16:-16, 16:-16]
    assert np.median(centre[..., 0]) == pytest.approx(2.0, abs=0.1)
    assert np.median(centre[..., 1]) == pytest.approx(0.0, abs=0.1)


def test_warp_error_of_a_still_clip_is_zero():
    assert warp_error(np.stack([_texture()] * 3)) < WARP_TOLERANCE


def test_warp_error_follows_motion_but_sees_brightness_changes():
    moving = np.stack([_texture(2 * k) for k in range(4)])
    naive = float(np.abs(np.diff(moving, axis=0)).mean())
    assert warp_error(moving) < WARP_TOLERANCE < naive
    # Same content 0.1 brighter every frame: no motion, so the whole change is error.
    brighter = np.stack([0.8 * _texture() + 0.1 * k for k in range(3)])
    assert warp_error(brighter) == pytest.approx(0.1, abs=WARP_TOLERANCE)


def test_warp_error_uses_the_flow_source():
    still = np.stack([_texture()] * 3)
    moving = np.stack([_texture(2 * k) for k in range(3)])
    # The still clip judged by the moving clip's flow is inconsistent with that motion.
    assert warp_error(still, flow_source=moving) > 10 * WARP_TOLERANCE


def test_flicker_index_is_mean_absolute_luma_change():
    # Grey frames: luma = value (the Rec. 709 weights sum to 1); changes 0.2, 0.2, 0.1.
    assert flicker_index(_flat([0.2, 0.4, 0.2, 0.3])) == pytest.approx(0.5 / 3, abs=1e-12)
    assert flicker_index(_flat([0.5, 0.5])) == 0.0


def test_metrics_refuse_mismatched_clips_naming_both_shapes():
    with pytest.raises(InputError, match="3 frames of 8x8.*2 frames of 8x8"):
        psnr(_flat([0.1] * 3), _flat([0.1] * 2))


def test_temporal_metrics_need_two_frames():
    with pytest.raises(InputError, match="only 1 frame"):
        flicker_index(_flat([0.1]))
    with pytest.raises(InputError, match="only 1 frame"):
        warp_error(_flat([0.1]))


def test_video_metrics_json_form():
    clip = np.stack([_texture()] * 2)
    measured = video_metrics(clip, reference=clip)
    assert measured.as_dict()["psnr_db"] == "inf" and measured.ssim == 1.0
    assert VideoMetrics(frames=2, warp_error=0.0, flicker=0.0).as_dict()["psnr_db"] is None
