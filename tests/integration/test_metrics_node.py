"""The metrics node inside a real ComfyUI: a small API graph measures a clip against another and saves the plot."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
from harness import FRAMES
from PIL import Image

RUN_TIMEOUT = 600.0
PLOT_PANEL_HEIGHT, PLOT_WIDTH = 260, 800
# Where a copy of the plot is left for a person to look at.
PLOT_COPY = Path(os.environ.get("RELIGHTVID_SCREENSHOTS", "/tmp/relightvid-screens")) / "metrics_plot.png"


def _graph() -> dict:
    def clip(load_id: str, file: str) -> dict:
        return {load_id: {"class_type": "LoadVideo", "inputs": {"file": file}}}

    return {
        **clip("1", "lion.mp4"),
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        **clip("3", "stage_light2.mp4"),
        "4": {"class_type": "GetVideoComponents", "inputs": {"video": ["3", 0]}},
        "5": {"class_type": "RelightVidTemporalMetrics", "inputs": {"images": ["2", 0], "reference": ["4", 0]}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 4]}},
        "7": {"class_type": "PreviewAny", "inputs": {"source": ["5", 1]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["5", 5], "filename_prefix": "relightvid_metrics"}},
    }


def test_metrics_node_measures_and_plots_in_comfyui(server, queue_tool):
    status, cause, files, entry = queue_tool.run(
        queue_tool.Client(server.url), _graph(), RUN_TIMEOUT, report=lambda _: None
    )
    assert status == "success", cause
    summary = entry["outputs"]["6"]["text"][0]
    assert summary.splitlines()[0].split() == ["frames", str(FRAMES)], summary
    assert "warp error" in summary and "SSIM" in summary, summary
    assert math.isfinite(float(entry["outputs"]["7"]["text"][0]))  # the flicker index
    plots = [server.root / name for name in files if name.endswith(".png")]
    assert plots, files
    image = np.asarray(Image.open(plots[0]).convert("RGB"))
    assert image.shape == (3 * PLOT_PANEL_HEIGHT, PLOT_WIDTH, 3) and image.std() > 10
    PLOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plots[0], PLOT_COPY)
