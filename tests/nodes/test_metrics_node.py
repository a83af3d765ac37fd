"""The metrics node: the library's numbers, a plot, and the reason for every value it cannot give."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relightvid_core.metrics import video_metrics

FRAMES, HEIGHT, WIDTH = 5, 40, 56
PLOT_PANEL_HEIGHT = 260


def _moving_clip(gain: float = 1.0) -> torch.Tensor:
    """A textured pattern sliding one pixel per frame, with a brightness step at frame 3."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    frames = []
    for t in range(FRAMES):
        value = 0.5 + 0.25 * np.sin(2 * np.pi * (x - t) / 14) * np.cos(2 * np.pi * y / 11)
        frames.append(np.stack([value, 0.7 * value, 1.0 - value], axis=-1) * (gain if t >= 3 else 1.0))
    return torch.from_numpy(np.clip(np.stack(frames), 0, 1)).float()


def test_metrics_node_returns_the_library_values_and_a_plot(pack):
    clip, reference = _moving_clip(gain=0.8), _moving_clip()
    warp, flicker, psnr, ssim, summary, plot = pack.node("RelightVidTemporalMetrics").measure(clip, reference)
    expected = video_metrics(clip, reference)
    assert warp == pytest.approx(expected.warp_error) and flicker == pytest.approx(expected.flicker)
    assert psnr == pytest.approx(expected.psnr) and ssim == pytest.approx(expected.ssim)
    assert flicker > 0.01 and 0 < ssim < 1 and math.isfinite(psnr)
    for name, value in expected.table_rows():
        assert name in summary and value in summary
    # Three panels (temporal, PSNR, SSIM) as one IMAGE; the curves put colour on the white canvas.
    assert plot.shape == (1, 3 * PLOT_PANEL_HEIGHT, 800, 3) and plot.dtype == torch.float32
    assert (plot.amax(dim=-1) - plot.amin(dim=-1)).max() > 0.5


def test_metrics_node_without_reference_says_so(pack):
    warp, flicker, psnr, ssim, summary, plot = pack.node("RelightVidTemporalMetrics").measure(_moving_clip())
    assert math.isnan(psnr) and math.isnan(ssim) and math.isfinite(warp)
    assert "no reference" in summary
    assert plot.shape[1] == PLOT_PANEL_HEIGHT  # the temporal panel only


def test_metrics_node_takes_the_flow_from_another_clip(pack):
    clip = _moving_clip()
    still = clip[:1].repeat(FRAMES, 1, 1, 1)
    # Judged by a still clip's (zero) flow, the moving clip's frames do not line up.
    warp = pack.node("RelightVidTemporalMetrics").measure(clip, flow_source=still)[0]
    assert warp > 2 * pack.node("RelightVidTemporalMetrics").measure(clip)[0]


def test_metrics_node_refuses_a_mismatched_reference_naming_both(pack):
    with pytest.raises(pack.core.errors.InputError, match=r"5 frames of 56x40 .* 2 frames of 56x40"):
        pack.node("RelightVidTemporalMetrics").measure(_moving_clip(), _moving_clip()[:2])
