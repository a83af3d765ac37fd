"""The metrics node: temporal consistency of a clip (warp error, flicker index), PSNR/SSIM against a reference,
and a per-frame plot."""

from __future__ import annotations

import logging
import math

import torch

from ...relightvid_core.metrics import frame_metrics, summarise
from ...relightvid_core.metrics_plot import plot_frame_metrics
from ...relightvid_core.optional import missing

logger = logging.getLogger(__name__)

WARP_FEATURE = "the warp error (OpenCV's Farnebäck optical flow)"
NO_REFERENCE = "PSNR and SSIM: no reference connected."


class RelightVidTemporalMetrics:
    DESCRIPTION = (
        "Measure a clip: warp error (each frame against the next one warped back along the optical flow, occluded "
        "pixels excluded; needs an OpenCV package, otherwise NaN and the summary says what to install), flicker "
        "index (mean change of mean luma between frames) and, with a reference clip, PSNR and SSIM. Lower warp "
        "error and flicker are steadier. Also draws the values per frame."
    )
    CATEGORY = "RelightVid/metrics"
    FUNCTION = "measure"
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("warp_error", "flicker_index", "psnr", "ssim", "summary", "plot")
    OUTPUT_TOOLTIPS = (
        "Mean warp error over the frame pairs, 0..1 units (NaN when no OpenCV is installed; see the summary).",
        "Mean absolute change of mean luma between consecutive frames, 0..1 units.",
        "PSNR against the reference in dB, over the whole clip (inf when identical; NaN without a reference).",
        "Mean SSIM against the reference (NaN without a reference).",
        "Every value as a small table, with the reason for any value that is missing.",
        "Per-frame plot: change from the previous frame (warp error, luma change), then PSNR and SSIM.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The clip to measure, as frames (at least 2)."}),
            },
            "optional": {
                "reference": (
                    "IMAGE",
                    {"tooltip": "A clip of the same frame count and size to compare with (for PSNR and SSIM)."},
                ),
                "flow_source": (
                    "IMAGE",
                    {
                        "tooltip": "Take the optical flow from this clip instead (same frame count and size), e.g. "
                        "the input of a relighting run, so the relit clip is judged by its source's motion."
                    },
                ),
            },
        }

    def measure(
        self, images: torch.Tensor, reference: torch.Tensor | None = None, flow_source: torch.Tensor | None = None
    ):
        no_flow = missing("cv2", WARP_FEATURE)
        if no_flow is not None:
            logger.warning("%s", no_flow)
        series = frame_metrics(images, reference, flow_source, warp=no_flow is None)
        metrics = summarise(series, images, reference)
        lines = [f"{name:<14}{value:>12}" for name, value in metrics.table_rows()]
        lines += [note for note in (no_flow, None if reference is not None else NO_REFERENCE) if note]
        plot = torch.from_numpy(plot_frame_metrics(series))[None]
        return (
            metrics.warp_error,
            metrics.flicker,
            math.nan if metrics.psnr is None else metrics.psnr,
            math.nan if metrics.ssim is None else metrics.ssim,
            "\n".join(lines),
            plot,
        )
