"""The animated preview of a clip while it is sampled, through ComfyUI's previewer and progress registry.

At each sampling step :meth:`ClipPreview.show` is handed x̂₀ (F, 4, h, w: SD1.5's scaled latents). A
daemon thread decodes frames of it with ComfyUI's latent previewer (``latent_preview.get_previewer``:
Latent2RGB or TAESD, as the user's ``--preview-method`` chose) and sends them one after another, at
:data:`PREVIEW_FRAME_RATE`, to the running node's preview through ComfyUI's per-node progress registry
(``comfy_execution.progress``), so the clip plays in the node while it is sampled. Outside ComfyUI, with
previews off, or on a ComfyUI without that registry, it does nothing.

Its cost is bounded, from the figures of ``bench/bench_preview.py`` (2 CPU cores, fp32, ComfyUI's SD1.5
U-Net for the step; the previewer and a U-Net step both grow about with frames × pixels):

* Latent2RGB is a 4→3 linear map: about 0.002 % of a step even decoding every frame.
* TAESD decoding every frame costs 4.5 to 5.4 % of a step over two runs (16 frames of 32² latents: 3.2 to
  3.8 s against a 71 s U-Net step of 3 guidance branches; 19 to 20 s for 16 frames at 512²) — at the
  issue's 5 % limit. So at most :data:`PREVIEW_MAX_FRAMES` frames, evenly spaced over the clip and never
  more than every other one, are decoded per step: 2.8 to 2.9 % of that step for 16 frames, a sixth of
  the unbounded cost for 48 (9.9 s against 59.3 s at 512²), at most two thirds of it for any clip of two
  frames or more, and for a single frame the one decode ComfyUI's own preview makes per step.
* The decoding happens on the preview thread, never on the sampling thread: :meth:`ClipPreview.show`
  only copies the chosen frames (about 0.1 ms; on a GPU one device-side copy, no synchronisation), and
  the thread decodes the newest copy lazily, so a step that arrives while it is still decoding replaces
  the pending one instead of queueing behind it. The work itself remains (on a CPU the thread shares the
  cores with the U-Net, on a GPU the device), which is why it is bounded as well as moved; but the
  sampling thread no longer waits for each frame's copy to the host.

With the bound the preview stays under the issue's 5 % of a step, so it is on whenever ComfyUI's previews
are (``--preview-method none`` turns it off with every other preview). On a GPU the ratio is not
measured here (an fp16 U-Net against TAESD in fp32 may cost relatively more); ``max_frames`` lowers it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from typing_extensions import Self

logger = logging.getLogger(__name__)

try:
    import comfy.latent_formats
    import latent_preview
except ImportError:
    latent_preview = None

try:  # the per-node progress registry of recent ComfyUI; without it there is no clip preview
    from comfy_execution.progress import get_progress_state
    from comfy_execution.utils import get_executing_context
except ImportError:
    get_progress_state = get_executing_context = None

# Frames per second of the animated preview (the official clips' rate).
PREVIEW_FRAME_RATE = 8.0
# Frames decoded per step at most (chosen by bench/bench_preview.py): a one-second loop at 8 fps, which
# keeps TAESD under 3 % of a step for a 16-frame clip and decodes a sixth of the frames of a 48-frame one.
PREVIEW_MAX_FRAMES = 8


def preview_stride(frames: int, max_frames: int = PREVIEW_MAX_FRAMES) -> int:
    """The step between previewed frames: every ``stride``-th frame from the first, evenly spaced over
    the clip, at most ``max_frames`` of them and at most every other frame (decoding every frame with
    TAESD costs about 4.5 % of a step; a single frame is decoded, as ComfyUI's own preview does)."""
    return max(2, -(-frames // max_frames))


def _frame_decoder(device: torch.device) -> Callable[[torch.Tensor], object] | None:
    """``one frame of x̂₀ (4, h, w) -> its PIL preview`` through ComfyUI's previewer (latent2rgb or
    TAESD, as the user chose); None outside ComfyUI or when previews are off."""
    if latent_preview is None:
        return None
    try:
        previewer = latent_preview.get_previewer(device, comfy.latent_formats.SD15())
    except Exception as error:  # noqa: BLE001 - previews are a nicety: a host without them must still sample
        logger.debug("latent previews unavailable: %s", error)
        return None
    if previewer is None:
        return None
    # The previewers decode the first image of a batch, so each frame goes through on its own; the latents
    # are SD1.5's scaled ones, which both our sampler and ComfyUI's hand to their callbacks.
    return lambda frame: previewer.decode_latent_to_preview(frame[None].float())


class ClipPreview:
    """Frames of the latest x̂₀ playing in turn in the running node's preview, at ``frame_rate``.

    ComfyUI shows one preview image per node and replaces it with each new one, so sending a clip's frames
    one after another animates it. A daemon thread decodes at most ``max_frames`` evenly spaced frames of
    the newest x̂₀ and sends them through ComfyUI's progress registry (the path of its own progress bar,
    whose interruption check must stay on the node's thread); :meth:`show` only hands it a copy of those
    frames. A no-op outside ComfyUI or with previews off; a use as a context manager stops the thread when
    the node's work ends, however it ends.
    """

    def __init__(
        self,
        device: torch.device,
        frame_rate: float = PREVIEW_FRAME_RATE,
        max_frames: int = PREVIEW_MAX_FRAMES,
    ):
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        self._decode = _frame_decoder(device)
        context = get_executing_context() if get_executing_context is not None else None
        self._node_id = None if context is None else context.node_id
        self._interval = 1.0 / frame_rate
        self._max_frames = max_frames
        self._pending: torch.Tensor | None = None  # the newest step's chosen frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._decode is not None and self._node_id is not None

    def show(self, denoised: torch.Tensor) -> None:
        """Play evenly spaced frames of ``denoised`` (F, 4, h, w) from the next decode on."""
        if not self.active:
            return
        stride = preview_stride(denoised.shape[0], self._max_frames)
        # A copy, as the sampler may reuse x̂₀'s memory; a strided slice needs no index tensor on the
        # device. One assignment, so the thread sees either the previous step or this one.
        self._pending = denoised.detach()[::stride].clone()
        if self._thread is None:
            self._thread = threading.Thread(target=self._play, name="RelightVid preview", daemon=True)
            self._thread.start()

    def _play(self) -> None:
        registry = get_progress_state()
        frames: list = []
        decoded = None  # the pending copy that ``frames`` come from
        index = 0
        # Grad mode is per thread: decode as ComfyUI runs nodes, in inference mode.
        with torch.inference_mode():
            while not self._stop.is_set():
                pending = self._pending
                if pending is not decoded:
                    fresh = self._decode_frames(pending)
                    if fresh is None:
                        return
                    frames, decoded = fresh, pending
                entry = registry.ensure_entry(self._node_id)
                frame = frames[index % len(frames)]
                image = ("JPEG", frame, latent_preview.MAX_PREVIEW_RESOLUTION)
                registry.update_progress(self._node_id, entry["value"], entry["max"], image)
                index += 1
                self._stop.wait(self._interval)

    def _decode_frames(self, latents: torch.Tensor) -> list | None:
        """The previews of ``latents``' frames; None when stopped on the way or when the previewer fails."""
        frames = []
        for latent in latents:
            if self._stop.is_set():
                return None
            try:
                frames.append(self._decode(latent))
            except Exception as error:  # noqa: BLE001 - a preview must never fail the sampling
                logger.warning("the RelightVid clip preview stopped: %s", error)
                return None
        return frames

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
