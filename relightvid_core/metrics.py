"""Video quality and temporal-consistency metrics: PSNR, SSIM, warp error and flicker index.

All take clips in IMAGE layout, ``(T, H, W, 3)`` RGB in 0..1 (tensors or arrays), and compute in float64.

* **PSNR** against a reference: ``10·log10(1 / MSE)`` with the MSE pooled over every frame, pixel and
  channel (data range 1); ``inf`` for identical clips.
* **SSIM** against a reference (Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13), kornia's
  ``kornia.metrics.ssim``: local means, variances and covariance under an 11x11 Gaussian window of σ 1.5
  (separable), with ``C1 = (0.01·L)²`` and ``C2 = (0.03·L)²``, L = 1; the SSIM map is averaged over the
  pixels at least 5 px from the border (where the window lies inside the frame; a frame 10 px or less across
  is mirrored by 5 px first, so that all its pixels count), then over channels and frames. 1 for identical
  clips. Per frame this is scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=-1)``, and PSNR is its ``peak_signal_noise_ratio``
  with ``data_range=1`` on the whole clip (tests/core/test_metrics_skimage.py checks both).
* **Warp error** (after Lai et al. 2018, "Learning Blind Video Temporal Consistency"): for each pair of
  consecutive frames, dense optical flow from frame t to t+1 (OpenCV Farnebäck on 8-bit grey, computed on
  ``flow_source`` — by default the clip itself; pass the *input* video to judge a relit clip by its
  source's motion), frame t+1 warped back onto frame t with that flow (bilinear ``remap``), and the mean
  absolute difference to frame t over the valid pixels, in 0..1 units: pixels whose flow leads outside the
  frame are excluded, and so are occluded ones, found by the forward–backward check of Sundaram et al.
  2010 (``|f + b̃|² > 0.01·(|f|² + |b̃|²) + 0.5``, b̃ the backward flow warped like the frame). The clip's
  warp error is the mean over its T−1 pairs. 0 for a still clip; lower is more consistent. It needs OpenCV
  (any one OpenCV wheel, see ``optional.py``); the other metrics need only required dependencies.
* **Flicker index**: the mean absolute change of per-frame mean luminance between consecutive frames,
  ``mean_t |Y(t+1) − Y(t)|`` with Rec. 709 luma weights on the (gamma-encoded) values, in 0..1 units.
  Global brightness flicker shows here even when the warp error hides it in noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .conditioning.geometry import SizePolicy, fit_to_size
from .errors import InputError
from .optional import require
from .values import counted
from .video_io import read_video

DATA_RANGE = 1.0
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709
# SSIM window of Wang et al. 2004 (kornia's window is a Gaussian of sigma 1.5 and takes the size; its
# constants are Wang et al.'s K1 = 0.01, K2 = 0.03).
SSIM_WINDOW = 11
# Farnebäck settings of OpenCV's own dense-flow sample: pyramid scale, levels, window, iterations, poly_n, poly_sigma.
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}
# Forward-backward consistency thresholds of Sundaram, Brox & Keutzer 2010.
OCCLUSION_RELATIVE, OCCLUSION_ABSOLUTE = 0.01, 0.5


def _as_clip(video: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
        raise InputError(f"{name} must be (T, H, W, 3) RGB in 0..1 with T >= 1, got shape {tuple(array.shape)}.")
    return array.astype(np.float64)


def _pair(video, reference, other: str = "reference") -> tuple[np.ndarray, np.ndarray]:
    video, reference = _as_clip(video, "video"), _as_clip(reference, other)
    if video.shape != reference.shape:
        raise InputError(
            f"the video is {counted(video.shape[0], 'frame')} of {video.shape[2]}x{video.shape[1]} but the {other} is "
            f"{counted(reference.shape[0], 'frame')} of {reference.shape[2]}x{reference.shape[1]}; they must match."
        )
    return video, reference


def _need_two_frames(clip: np.ndarray, metric: str) -> None:
    if clip.shape[0] < 2:
        raise InputError(f"{metric} compares consecutive frames; the clip has only {clip.shape[0]} frame.")


def psnr(video: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, MSE pooled over the whole clip (module docstring); ``inf`` if identical."""
    video, reference = _pair(video, reference)
    mse = float(np.mean((video - reference) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(DATA_RANGE**2 / mse)


def ssim_per_frame(video: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray) -> np.ndarray:
    """(T,) mean structural similarity of each frame (module docstring), computed with kornia's SSIM map."""
    from kornia.metrics import ssim as ssim_map  # a required dependency; kornia costs a second to import

    video, reference = _pair(video, reference)
    margin = SSIM_WINDOW // 2
    height, width = video.shape[1:3]
    # kornia's "valid" map holds the pixels whose window lies inside the frame. A frame too small to have any
    # is mirrored first (… c b a | a b c …), so that every one of its pixels has a whole window and counts.
    pad_rows = (margin, margin) if height <= 2 * margin else (0, 0)
    pad_columns = (margin, margin) if width <= 2 * margin else (0, 0)
    scores = []
    for x, y in zip(video, reference, strict=True):  # one frame at a time: five float64 maps per frame
        x, y = (np.pad(image, (pad_rows, pad_columns, (0, 0)), mode="symmetric") for image in (x, y))
        x, y = (torch.from_numpy(image).permute(2, 0, 1)[None] for image in (x, y))
        # eps 0: kornia adds eps to the denominator, which is at least C1·C2 > 0 without it.
        scores.append(float(ssim_map(x, y, SSIM_WINDOW, max_val=DATA_RANGE, eps=0.0, padding="valid").mean()))
    return np.array(scores)


def ssim(video: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray) -> float:
    """Mean structural similarity (module docstring); 1 for identical clips."""
    return float(ssim_per_frame(video, reference).mean())


def psnr_per_frame(video: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray) -> np.ndarray:
    """(T,) PSNR of each frame in dB, ``inf`` where a frame is identical to its reference."""
    video, reference = _pair(video, reference)
    mse = np.mean((video - reference) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(DATA_RANGE**2 / mse)


def _grey8(frame: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frame @ LUMA_WEIGHTS * 255.0), 0, 255).astype(np.uint8)


def optical_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Farnebäck flow (H, W, 2) as (dx, dy) such that ``first[y, x] ≈ second[y + dy, x + dx]``.

    Args:
        first, second: (H, W, 3) RGB frames in 0..1.
    """
    cv2 = require("cv2", "the warp error (OpenCV's Farnebäck optical flow)")
    return cv2.calcOpticalFlowFarneback(_grey8(first), _grey8(second), None, **FARNEBACK)


def _warp(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` sampled at (x + dx, y + dy) (bilinear), and where that point lies inside the frame."""
    cv2 = require("cv2", "the warp error (OpenCV's remap)")
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return warped.astype(np.float64), inside


def _consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Forward–backward check (Sundaram et al. 2010): False where the pixel is occluded in the next frame."""
    backward_at_target, _ = _warp(backward, forward)
    mismatch = np.sum((forward + backward_at_target) ** 2, axis=-1)
    scale = np.sum(forward.astype(np.float64) ** 2, axis=-1) + np.sum(backward_at_target**2, axis=-1)
    return mismatch <= OCCLUSION_RELATIVE * scale + OCCLUSION_ABSOLUTE


def warp_errors(
    video: torch.Tensor | np.ndarray,
    flow_source: torch.Tensor | np.ndarray | None = None,
    occlusion_check: bool = True,
) -> np.ndarray:
    """(T − 1,) warp error of each consecutive pair (t, t+1), as :func:`warp_error` defines it; NaN for a pair
    with no valid pixel (everything left the frame), which says nothing about consistency."""
    clip = _as_clip(video, "video")
    source = clip if flow_source is None else _pair(clip, flow_source, "flow clip")[1]
    _need_two_frames(clip, "the warp error")
    errors = np.full(clip.shape[0] - 1, math.nan)
    for t in range(clip.shape[0] - 1):
        forward = optical_flow(source[t], source[t + 1])
        warped, valid = _warp(clip[t + 1], forward)
        if occlusion_check:
            valid &= _consistent(forward, optical_flow(source[t + 1], source[t]))
        if valid.any():
            errors[t] = np.abs(clip[t] - warped)[valid].mean()
    return errors


def warp_error(
    video: torch.Tensor | np.ndarray,
    flow_source: torch.Tensor | np.ndarray | None = None,
    occlusion_check: bool = True,
) -> float:
    """Mean absolute error between each frame and the next one warped back onto it (module docstring).

    Args:
        video: (T, H, W, 3) clip in 0..1, T >= 2.
        flow_source: the clip the flow is computed on (same shape), e.g. the input of a relighting run;
            None: ``video`` itself.
        occlusion_check: exclude pixels failing the forward–backward check.

    Returns:
        The warp error in 0..1 units (0: every frame is its predecessor moved along the flow); NaN when no
        pair has a valid pixel.

    Raises:
        InputError: a wrong layout, fewer than 2 frames, or a ``flow_source`` of another shape.
        MissingDependencyError: no OpenCV is installed.
    """
    return _mean_of_defined(warp_errors(video, flow_source, occlusion_check))


def _mean_of_defined(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def luma_changes(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """(T − 1,) absolute change of mean luma (Rec. 709) from frame t to t+1, in 0..1 units."""
    clip = _as_clip(video, "video")
    _need_two_frames(clip, "the flicker index")
    luma = (clip @ LUMA_WEIGHTS).mean(axis=(1, 2))
    return np.abs(np.diff(luma))


def flicker_index(video: torch.Tensor | np.ndarray) -> float:
    """Mean absolute change of per-frame mean luma (Rec. 709) between consecutive frames, in 0..1 units."""
    return float(luma_changes(video).mean())


@dataclass(frozen=True)
class VideoMetrics:
    """Metrics of one clip. ``psnr``/``ssim`` are None without a reference; ``psnr`` is ``inf`` when identical.
    ``series``: the per-frame values they came from (for plots), when computed from them."""

    frames: int
    warp_error: float
    flicker: float
    psnr: float | None = None
    ssim: float | None = None
    series: FrameMetrics | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, int | float | str | None]:
        """JSON-ready (JSON has no infinity or NaN): an infinite PSNR becomes the string ``"inf"``; a metric
        that is absent or undefined (NaN, e.g. a warp error with no valid pixel) becomes None."""

        def plain(value: float | None) -> float | str | None:
            if value is None or math.isnan(value):
                return None
            return "inf" if math.isinf(value) else value

        return {
            "frames": self.frames,
            "psnr_db": plain(self.psnr),
            "ssim": plain(self.ssim),
            "warp_error": plain(self.warp_error),
            "flicker_index": plain(self.flicker),
        }

    def table_rows(self) -> list[tuple[str, str]]:
        """(name, value) pairs for a printed table; "-" for a metric that is absent or undefined."""

        def shown(value: float | None, digits: int) -> str:
            return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"

        return [
            ("frames", str(self.frames)),
            ("PSNR (dB)", shown(self.psnr, 2)),
            ("SSIM", shown(self.ssim, 4)),
            ("warp error", shown(self.warp_error, 5)),
            ("flicker index", shown(self.flicker, 5)),
        ]


@dataclass(frozen=True)
class FrameMetrics:
    """Per-frame series of one clip (for plots): the temporal metrics per consecutive pair (t, t+1), the
    reference metrics per frame."""

    luma_change: np.ndarray  # (T − 1,) |ΔY|; the flicker index is its mean
    warp_error: np.ndarray | None  # (T − 1,), NaN for a pair with no valid pixel; None: not computed
    psnr: np.ndarray | None = None  # (T,) dB, inf for an identical frame; None without a reference
    ssim: np.ndarray | None = None  # (T,); None without a reference


def frame_metrics(
    video: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    flow_source: torch.Tensor | np.ndarray | None = None,
    warp: bool = True,
) -> FrameMetrics:
    """Every metric of ``video`` per frame or pair; ``warp=False`` skips the warp error (it needs OpenCV)."""
    clip = _as_clip(video, "video")
    return FrameMetrics(
        luma_change=luma_changes(clip),
        warp_error=warp_errors(clip, flow_source) if warp else None,
        psnr=None if reference is None else psnr_per_frame(clip, reference),
        ssim=None if reference is None else ssim_per_frame(clip, reference),
    )


def summarise(
    series: FrameMetrics, video: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray | None = None
) -> VideoMetrics:
    """The clip's metrics from its series; the warp error is NaN when the series has none. PSNR is pooled over
    the whole clip (module docstring), not averaged over the per-frame values."""
    return VideoMetrics(
        frames=len(series.luma_change) + 1,
        warp_error=math.nan if series.warp_error is None else _mean_of_defined(series.warp_error),
        flicker=float(series.luma_change.mean()),
        psnr=None if reference is None else psnr(video, reference),
        ssim=None if series.ssim is None else float(series.ssim.mean()),
        series=series,
    )


def video_metrics(
    video: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    flow_source: torch.Tensor | np.ndarray | None = None,
) -> VideoMetrics:
    """Every metric of ``video``: PSNR and SSIM against ``reference`` when given, warp error (flow from
    ``flow_source``, default the video) and flicker index."""
    return summarise(frame_metrics(video, reference, flow_source), video, reference)


def fit_flow_clip(
    flow_clip: torch.Tensor, frames: int, height: int, width: int, policy: SizePolicy | str = SizePolicy.COVER
) -> torch.Tensor:
    """Bring the clip the flow is taken from (e.g. a relighting run's input) to the measured video's frames
    and size: its first ``frames`` frames (a run may have used only those), resized with the size ``policy``
    the run used (``cover`` keeps the aspect and crops the centre; ``center_crop``, the official one, only crops).

    Raises:
        InputError: the flow clip has fewer frames than the video.
    """
    if flow_clip.shape[0] < frames:
        raise InputError(
            f"the flow clip has {counted(flow_clip.shape[0], 'frame')} but the video has {frames}; give the clip the video "
            "was made from."
        )
    flow_clip = flow_clip[:frames]
    if tuple(flow_clip.shape[1:3]) == (height, width):
        return flow_clip
    if SizePolicy(policy) is SizePolicy.MULTIPLE_OF_64:
        raise InputError("the flow clip's size policy must be one that targets a given size, not multiple_of_64.")
    return fit_to_size(flow_clip, policy, width, height)


def measure_files(
    video: str | Path,
    reference: str | Path | None = None,
    flow_from: str | Path | None = None,
    flow_fit: SizePolicy | str = SizePolicy.COVER,
) -> VideoMetrics:
    """:func:`video_metrics` of video files (each decoded whole). The reference must match the video in frames
    and size; the flow clip is fitted to it with :func:`fit_flow_clip` (``flow_fit``: its size policy).

    Raises:
        InputError: a missing or unreadable file, or clips that do not match.
    """
    clip, _ = read_video(video)
    reference_clip = None if reference is None else read_video(reference)[0]
    source = None
    if flow_from is not None:
        source = fit_flow_clip(read_video(flow_from)[0], clip.shape[0], clip.shape[1], clip.shape[2], flow_fit)
    return video_metrics(clip, reference_clip, source)
