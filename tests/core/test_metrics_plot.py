"""The per-frame metrics plot: panels, curves in their colours, and the command line's --plot."""

from __future__ import annotations

import numpy as np
import pytest

from relightvid_core.cli import main
from relightvid_core.errors import InputError
from relightvid_core.metrics import frame_metrics
from relightvid_core.metrics_plot import COLOURS, PANEL_HEIGHT, PLOT_WIDTH, plot_frame_metrics
from relightvid_core.video_io import read_image, write_video


def _clip(frames: int = 6, size: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    clip = [0.5 + 0.3 * np.sin(2 * np.pi * (x - t) / 9)[..., None] * np.cos(2 * np.pi * y / 7)[..., None] for t in range(frames)]
    return np.clip(np.repeat(np.stack(clip), 3, axis=-1), 0, 1)


def _has_colour(image: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool((np.abs(image * 255 - np.array(colour)).max(axis=-1) < 2).any())


def test_plot_has_one_panel_per_scale_and_each_curve_in_its_colour():
    clip = _clip()
    image = plot_frame_metrics(frame_metrics(clip, clip * 0.9))
    assert image.shape == (3 * PANEL_HEIGHT, PLOT_WIDTH, 3) and image.dtype == np.float32
    for name in ("warp", "luma", "psnr", "ssim"):
        assert _has_colour(image, COLOURS[name]), name
    temporal_only = plot_frame_metrics(frame_metrics(clip, warp=False))
    assert temporal_only.shape[0] == PANEL_HEIGHT
    assert not _has_colour(temporal_only, COLOURS["warp"]) and _has_colour(temporal_only, COLOURS["luma"])


def test_plot_refuses_a_width_too_small_for_its_labels():
    with pytest.raises(InputError, match="width"):
        plot_frame_metrics(frame_metrics(_clip(), warp=False), width=100)


def test_cli_metrics_writes_the_plot(tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", _clip(size=64), fps=8)
    plot = tmp_path / "plot.png"
    assert main(["metrics", str(video), "--reference", str(video), "--plot", str(plot)]) == 0
    assert f"wrote {plot}" in capsys.readouterr().out
    image = read_image(plot)[0].numpy()
    assert image.shape == (3 * PANEL_HEIGHT, PLOT_WIDTH, 3) and _has_colour(image, COLOURS["ssim"])
