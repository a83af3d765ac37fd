"""Context windows for clips longer than the motion modules can see at once.

The U-Net's temporal position encoding holds 32 frames (docs/official_code.md §a.3) and was trained on 16-frame
clips, so a long clip is denoised in overlapping windows, each a fresh clip to the network (frame offset
0), and the windows' predictions are blended per frame with fusion weights. Each window gets its own
frames of the noisy latents *and of every per-frame condition* (fg/bg latents, every IIE copy, HDR tokens):
ComfyUI core's windows hand every window the first frames' concat condition instead.

Only one window's worth of frames reaches the U-Net at a time; memory beyond that grows with the latents
alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import InputError
from .checks import is_whole_number
from .guidance import Conditions, ModelFn

MAX_WINDOW_FRAMES = 32  # length of the motion modules' position encoding


def flat_weights(length: int, overlap: int) -> torch.Tensor:
    """Every frame of a window counts the same: overlaps are plain averages."""
    return torch.ones(length)


def linear_weights(length: int, overlap: int) -> torch.Tensor:
    """1 in the middle, ramping down linearly across the ``overlap`` frames at each end: a cross-fade."""
    position = torch.arange(length, dtype=torch.float32)
    ramp = torch.minimum(position + 1, length - position) / (overlap + 1)
    return ramp.clamp(max=1.0)


def pyramid_weights(length: int, overlap: int) -> torch.Tensor:
    """1, 2, …, peak, …, 2, 1: trust a window most in its middle, where its frames have the most context."""
    position = torch.arange(length, dtype=torch.float32)
    return torch.minimum(position + 1, length - position)


FUSIONS: dict[str, Callable[[int, int], torch.Tensor]] = {
    "flat": flat_weights,
    "linear": linear_weights,
    "pyramid": pyramid_weights,
}


def fusion_weights(name: str, length: int, overlap: int) -> torch.Tensor:
    """(length,) strictly positive float32 weights of the fusion ``name``.

    Raises:
        InputError (a ValueError): an unknown name.
    """
    try:
        return FUSIONS[name](length, overlap)
    except KeyError:
        raise InputError(f"window fusion must be one of {', '.join(FUSIONS)}; got {name!r}.") from None


def window_indices(frames: int, length: int, overlap: int, closed_loop: bool = False) -> list[list[int]]:
    """Frame indices of each window, in order.

    Windows start every ``length − overlap`` frames. Open: the last window is moved back to end on the last
    frame, so every window is full. Closed loop: windows keep their stride and wrap past the end to the
    first frames, so the clip's end is also blended with its start (for looping videos). A clip no longer
    than ``length`` is one window of all its frames.
    """
    if frames <= length:
        return [list(range(frames))]
    stride = length - overlap
    if closed_loop:
        return [[(start + i) % frames for i in range(length)] for start in range(0, frames, stride)]
    starts = list(range(0, frames - length + 1, stride))
    if starts[-1] + length < frames:
        starts.append(frames - length)
    return [list(range(start, start + length)) for start in starts]


@dataclass(frozen=True)
class ContextWindows:
    """Sliding context windows over the frame axis.

    Attributes:
        length: frames per window, 1..32 (default 16, the training clip length).
        overlap: frames shared by neighbouring windows, 0..length−1 (default 4).
        closed_loop: wrap the last windows around to the first frames.
        fusion: how overlapping predictions are blended: a key of :data:`FUSIONS` (default ``pyramid``).
        progress: called with (windows done, windows in this step) after every window, so a long clip shows
            progress within a step; None: no calls.

    Raises:
        InputError: a length outside 1..32, an overlap outside 0..length−1, or an unknown fusion.
    """

    length: int = 16
    overlap: int = 4
    closed_loop: bool = False
    fusion: str = "pyramid"
    progress: Callable[[int, int], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (is_whole_number(self.length) and 1 <= self.length <= MAX_WINDOW_FRAMES):
            raise InputError(
                f"window length must be an integer in 1..{MAX_WINDOW_FRAMES} (the motion modules' position "
                f"encoding); got {self.length!r}."
            )
        if not (is_whole_number(self.overlap) and 0 <= self.overlap < self.length):
            raise InputError(f"window overlap must be an integer in 0..{self.length - 1}; got {self.overlap!r}.")
        fusion_weights(self.fusion, self.length, self.overlap)

    def wrap(self, model_fn: ModelFn) -> ModelFn:
        """A :data:`ModelFn` running ``model_fn`` window by window and blending the overlaps."""

        def windowed(x: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
            frames = x.shape[1]
            windows = window_indices(frames, self.length, self.overlap, self.closed_loop)
            if len(windows) == 1:  # the whole clip at once: exactly the unwindowed result
                eps = model_fn(x, t, cond)
                self._report(1, 1)
                return eps
            weights = fusion_weights(self.fusion, self.length, self.overlap).to(x.device)
            total = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
            norm = torch.zeros(frames, dtype=torch.float32, device=x.device)
            for done, window in enumerate(windows, start=1):
                index = torch.tensor(window, device=x.device)
                eps = model_fn(x[:, index], t, cond.frames(index))
                total.index_add_(1, index, eps * weights.view(1, -1, 1, 1, 1))
                norm.index_add_(0, index, weights)
                self._report(done, len(windows))
            return total / norm.view(1, -1, 1, 1, 1)

        return windowed

    def count(self, frames: int) -> int:
        """Number of windows a clip of ``frames`` frames is denoised in (U-Net passes per step)."""
        return len(window_indices(frames, self.length, self.overlap, self.closed_loop))

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)
